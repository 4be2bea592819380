"""Cloak a long recording through the CLI and report wall time and peak memory (RSS).

    python benchmarks/long_file.py --minutes 60 [--rate 16000] [--channels 1]

Builds the file by tiling held-out EmoDB clips (block by block, so this script stays small
itself), then runs ``cloak apply`` in a child process and reads its peak RSS.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from cloak.emodb import find_emodb, load_emodb, split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--strength", default="medium")
    args = ap.parse_args()
    clips = [sf.read(str(u.path), dtype="float32")[0] for u in split(load_emodb(find_emodb()))[1]]
    block = soxr.resample(np.concatenate(clips), 16000, args.rate).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "long.wav"
        frames = int(args.minutes * 60 * args.rate)
        with sf.SoundFile(src, "w", samplerate=args.rate, channels=args.channels, subtype="PCM_16") as f:
            written = 0
            while written < frames:
                part = block[: frames - written]
                f.write(np.repeat(part[:, None], args.channels, axis=1))
                written += len(part)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "cloak", "apply", str(src), "-o", str(Path(tmp) / "out"), "-q",
                               "--strength", args.strength], capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode:
            raise SystemExit(proc.stderr)
        out = sf.info(Path(tmp) / "out" / "long.wav")
        assert out.frames == frames and out.channels == args.channels
    audio_s = frames / args.rate
    print(f"{args.minutes:g} min at {args.rate} Hz x {args.channels} ch, strength {args.strength}")
    print(f"wall time {wall:.0f} s (real-time factor {wall / audio_s:.4f}), peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
