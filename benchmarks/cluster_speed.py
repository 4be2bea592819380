"""Files per second of plain ``cloak apply`` against ``--workers 1`` and ``--workers 2`` (Ray).

    python benchmarks/cluster_speed.py [--sets heldout,long,short500] [--long-minutes 5] [--args "--mode subtle"]

Sets, built in a temp folder from the held-out EmoDB clips (speakers 03+08):
  heldout   the 107 clips themselves
  long      4 files of ``--long-minutes`` each (clips concatenated)
  short500  500 clips (the 107 copied round-robin), for the fixed cost of Ray

Each run is the real CLI in a child process, with its defaults unless ``--args`` adds options. Printed per run: wall
time from start to exit (Ray's start-up included), files/s on that wall time, files/s in the
steady state (between the first and the last output written, so start-up excluded), and
peak RSS: of the process for plain ``cloak apply``, of each worker (as the worker reports it)
with ``--workers``. The machine load (``os.getloadavg``) is printed before and after each run.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from cloak.emodb import find_emodb, load_emodb, split

CLOAK = str(Path(sys.executable).with_name("cloak"))
MODES = {"plain": [], "workers 1": ["--workers", "1"], "workers 2": ["--workers", "2"]}


def build(sets: list[str], root: Path, long_minutes: float) -> dict[str, Path]:
    clips = [u.path for u in split(load_emodb(find_emodb()))[1]]
    folders = {}
    for name in sets:
        folder = folders[name] = root / name
        folder.mkdir()
        if name == "heldout":
            for p in clips:
                shutil.copy(p, folder / p.name)
        elif name == "short500":
            for k in range(500):
                p = clips[k % len(clips)]
                shutil.copy(p, folder / f"{k:03d}_{p.name}")
        elif name == "long":
            audio = np.concatenate([sf.read(str(p), dtype="float32")[0] for p in clips])
            frames = int(long_minutes * 60 * 16000)
            for k in range(4):
                tiled = np.resize(np.roll(audio, k * 16000), frames)  # a different start per file
                sf.write(str(folder / f"long{k}.wav"), tiled, 16000, subtype="PCM_16")
        else:
            raise SystemExit(f"unknown set {name!r}")
    return folders


def run(folder: Path, out: Path, extra: list[str]) -> dict:
    """One ``cloak apply`` over ``folder``: wall time, steady files/s, peak RSS, load before/after."""
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.Popen([CLOAK, "-v", "apply", str(folder), "-o", str(out), "-q", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = status
    wall = time.perf_counter() - t
    if status:
        raise SystemExit(f"cloak apply {' '.join(extra)} failed:\n{err[-3000:]}")
    times = sorted(p.stat().st_mtime for p in out.rglob("*.wav"))
    workers = [float(m) for m in re.findall(r"peak RSS (\d+) MB", err)]
    return {"files": len(times), "wall": wall, "steady": (len(times) - 1) / max(times[-1] - times[0], 1e-9),
            "rss": workers or [usage.ru_maxrss / 1024], "load": (load, os.getloadavg()[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="heldout,long,short500", help="comma-separated: heldout, long, short500")
    ap.add_argument("--long-minutes", type=float, default=5.0, help="length of each of the 4 long files")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    ap.add_argument("--args", default="", help="extra `cloak apply` options for every run, e.g. '--mode subtle'")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; CLOAK_THREADS={os.environ.get('CLOAK_THREADS', '1')}; cloak apply options: "
          f"{args.args or '(defaults)'}; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folders = build(args.sets.split(","), Path(tmp), args.long_minutes)
        for name, folder in folders.items():
            results = {}
            for mode in args.modes.split(","):
                out = Path(tmp) / f"out-{name}-{mode.replace(' ', '')}"
                r = results[mode] = run(folder, out, [*shlex.split(args.args), *MODES[mode]])
                shutil.rmtree(out)
                print(f"{name:9} {mode:9} {r['files']:4d} files  wall {r['wall']:7.1f} s  "
                      f"{r['files'] / r['wall']:7.3g} files/s  steady {r['steady']:7.3g} files/s  "
                      f"peak RSS {'/'.join(f'{m:.0f}' for m in r['rss'])} MB  load {r['load'][0]:.1f}->{r['load'][1]:.1f}",
                      flush=True)
            if "plain" in results:
                base = results["plain"]
                for mode in results.keys() - {"plain"}:
                    r = results[mode]
                    print(f"{name:9} {mode:9} vs plain: {base['wall'] / r['wall']:.2f}x on wall time, "
                          f"{r['steady'] / base['steady']:.2f}x steady-state", flush=True)


if __name__ == "__main__":
    main()
