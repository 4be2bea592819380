"""Seconds per clip of each listener-side quality metric on held-out EmoDB clips (speakers 03+08).

    OMP_NUM_THREADS=1 python benchmarks/quality_speed.py [--clips 8] [--default-ort]

Wall and CPU seconds per clip (median over the clips) for DNSMOS, one speaker embedding, PESQ-WB
and STOI (clean against 20 dB white noise); load is the first construction, imports included.
``--default-ort`` also times DNSMOS with onnxruntime's default session options (all cores,
spinning threads) on two of the clips.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import soundfile as sf

from cloak.emodb import find_emodb, load_emodb, split


def timed(fn):
    """(result, wall seconds, CPU seconds of this process) of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--default-ort", action="store_true")
    args = ap.parse_args()
    held = split(load_emodb(find_emodb()))[1]
    chosen = held[:: max(1, len(held) // args.clips)][: args.clips]
    waves = [sf.read(str(u.path), dtype="float32")[0] for u in chosen]
    rng = np.random.default_rng(0)
    noisy = [w + rng.standard_normal(w.size).astype(np.float32) * np.sqrt(np.mean(w**2) / 100) for w in waves]
    seconds = sum(w.size for w in waves) / 16_000
    print(f"{len(waves)} held-out clips, {seconds:.1f} s of audio (mean {seconds / len(waves):.2f} s), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.1f}")

    from cloak.eval.quality import DNSMOS, SpeakerSimilarity, dnsmos_windows, pesq_wb, stoi

    dnsmos, load_w, _ = timed(DNSMOS)
    windows = [len(dnsmos_windows(w)) for w in waves]
    runs = [timed(lambda w=w: dnsmos.score(w))[1:] for w in waves]
    report("DNSMOS", load_w, runs, f"{np.mean(windows):.1f} windows of 9.01 s per clip, "
           f"CPU {sum(c for _, c in runs) / sum(windows):.2f} s per window")

    import torch

    speaker, load_w, _ = timed(SpeakerSimilarity)
    runs = [timed(lambda w=w: speaker.embed(w))[1:] for w in waves]
    report("speaker embedding", load_w, runs, f"torch threads {torch.get_num_threads()}; a similarity is two embeddings")

    _, load_w, _ = timed(lambda: pesq_wb(waves[0], noisy[0]))
    runs = [timed(lambda w=w, n=n: pesq_wb(w, n))[1:] for w, n in zip(waves, noisy)]
    report("PESQ-WB", load_w, runs, "first call includes the import")

    _, load_w, _ = timed(lambda: stoi(waves[0], noisy[0]))
    runs = [timed(lambda w=w, n=n: stoi(w, n))[1:] for w, n in zip(waves, noisy)]
    report("STOI", load_w, runs, "first call includes the import")

    if args.default_ort:
        import onnxruntime as ort

        from cloak.eval.quality import DNSMOS_MODEL

        session = ort.InferenceSession(os.path.join(os.path.dirname(__import__("speechmos").__file__), *DNSMOS_MODEL),
                                       providers=["CPUExecutionProvider"])
        runs = [timed(lambda w=w: [session.run(None, {"input_1": x[None]}) for x in dnsmos_windows(w)])[1:]
                for w in waves[:2]]
        report("DNSMOS, default ORT options", 0.0, runs, f"{sum(windows[:2])} windows on 2 clips")


def report(name: str, load_s: float, runs: list[tuple[float, float]], note: str) -> None:
    wall, cpu = np.median([r[0] for r in runs]), np.median([r[1] for r in runs])
    print(f"{name:28s} load {load_s:5.2f} s | per clip wall {wall:6.3f} s, CPU {cpu:6.3f} s "
          f"(max wall {max(r[0] for r in runs):.3f} s) | {note}")


if __name__ == "__main__":
    main()
