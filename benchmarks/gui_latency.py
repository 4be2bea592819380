"""How responsive is the desktop app while it cloaks, and how long does a 10 s clip take?

Opens a 10 s clip (held-out EmoDB utterances joined; a synthetic vowel without EmoDB) in the
real window, clicks Cloak in the default mode (or ``--mode``) and, meanwhile, a 10 ms ``QTimer``
records the largest gap between its ticks (event-loop latency, including the redraw of the result
and the independent readout that follows the cloak). Wall time runs from the click to the
window's ``cloak_ended`` signal; the readout's from there to ``readout_ended``.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_latency.py [--repeats 3] [--seconds 10] [--mode subtle]

Targets: latency <= 100 ms, 10 s clip <= 1 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

LATENCY_TARGET_MS = 100.0
WALL_TARGET_S = 1.0
TICK_MS = 10
SETTLE_MS = 300  # keep measuring after the cloak ends, so the plot redraw counts too


def make_clip(seconds: float, dest: Path) -> str:
    """Write a ``seconds``-long 16 kHz clip to ``dest``; returns where it came from."""
    from cloak.emodb import find_emodb, load_emodb, split

    sr = 16000
    need = int(seconds * sr)
    root = find_emodb()
    if root is not None:
        parts, have = [], 0
        for u in split(load_emodb(root))[1]:
            x, rate = sf.read(str(u.path), dtype="float32")
            if rate == sr:
                parts.append(x)
                have += len(x)
            if have >= need:
                break
        wave, origin = np.concatenate(parts)[:need], f"EmoDB held-out speakers ({len(parts)} utterances)"
    else:
        t = np.arange(need) / sr
        wave = (0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
        origin = "synthetic (EmoDB not found)"
    sf.write(str(dest), wave, sr, subtype="PCM_16")
    return origin


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="cloaks to time (the first includes warm-up)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length")
    p.add_argument("--mode", default=None, help="cloaking mode (default: the app's)")
    args = p.parse_args(argv)

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from cloak.gui.app import dispose, load_model
    from cloak.gui.window import MainWindow
    from cloak.gui.worker import worker_threads
    from cloak.model import EmotionCNN, build_recognizer

    def tick(ticks: list[float]) -> None:
        ticks.append(time.perf_counter())

    app = QApplication.instance() or QApplication([])
    model, error = load_model()
    if model is None:
        print(f"warning: {error}; timing with random weights", file=sys.stderr)
        model = build_recognizer(EmotionCNN()).eval()
    window = MainWindow(model)
    window.show()

    def wait(signal, timeout_ms=120_000):
        loop = QEventLoop()
        result = []

        def got(*a):
            result.append(a)
            loop.quit()

        signal.connect(got)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()
        signal.disconnect(got)
        if not result:
            raise TimeoutError("no signal")
        return result[0]

    def pump(ms):
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip10s.wav"
        origin = make_clip(args.seconds, clip)
        window.open_file(clip)
        wait(window.predicted)
        if args.mode:
            window.set_mode(args.mode)
        pump(200)
        mode = window.mode()
        what = f"{mode.attack.steps} steps" if mode.neutralize is None else f"calm {mode.neutralize.strength:g}"
        print(f"clip: {args.seconds:g} s from {origin}; mode {mode.name} ({what}); "
              f"torch threads in the worker {worker_threads()} of {os.cpu_count()} cores")

        walls, gaps = [], []
        for i in range(args.repeats):
            ticks: list[float] = []
            timer = QTimer(interval=TICK_MS, timerType=Qt.PreciseTimer)
            timer.timeout.connect(partial(tick, ticks))
            timer.start()
            pump(50)
            t0 = time.perf_counter()
            window.start_cloak()
            outcome = wait(window.cloak_ended)[0]
            wall = time.perf_counter() - t0
            if outcome == "finished":
                wait(window.readout_ended)
            read_s = time.perf_counter() - t0 - wall
            pump(SETTLE_MS)
            timer.stop()
            if outcome != "finished":
                print(f"run {i + 1}: cloak {outcome}: {window.banner.text()}", file=sys.stderr)
                dispose(window)
                return 1
            t = np.asarray(ticks)
            gap = np.diff(t) * 1000
            gap_ms = float(gap.max()) if len(gap) else float("nan")
            cloak_gap = float(gap[t[1:] <= t0 + wall].max(initial=0.0))  # gaps that ended while cloaking
            walls.append(wall)
            gaps.append(gap_ms)
            print(f"run {i + 1}: wall {wall:.3f} s (Chain.cloak {window.cloak_seconds:.3f} s), readout {read_s:.1f} s, "
                  f"max event-loop gap {gap_ms:.1f} ms (while cloaking {cloak_gap:.1f} ms; {len(ticks)} ticks), "
                  f"surrogate {window.emotion_before} -> "
                  f"{window.emotion_after}, {window.judge} {window.judge_before} -> {window.judge_after}")
    dispose(window)

    warm = walls[1:] or walls
    wall_s, gap_ms = statistics.median(warm), max(gaps)
    print(f"10 s clip cloak wall time (median of warm runs): {wall_s:.3f} s  "
          f"[target <= {WALL_TARGET_S:g} s: {'ok' if wall_s <= WALL_TARGET_S else 'MISSED'}]")
    print(f"event-loop latency (max gap, all runs): {gap_ms:.1f} ms  "
          f"[target <= {LATENCY_TARGET_MS:g} ms: {'ok' if gap_ms <= LATENCY_TARGET_MS else 'MISSED'}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
