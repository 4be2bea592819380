"""Measure the neutralizer's reference values on the EmoDB *training* speakers, per emotion.

Prints, per emotion, the means of: syllable nuclei per second of phonation, median spectral
tilt of voiced speech (dB/octave), and median voiced F0 over its 5th percentile. The neutral
row gives the constants in ``cloak/neutralizer.py``; the other rows show how far each emotion
sits from it. Speakers 03 and 08 are never read.

    OMP_NUM_THREADS=1 python benchmarks/neutral_reference.py   # ~2 min
"""
from __future__ import annotations

import sys

import numpy as np
import soundfile as sf

from cloak.emodb import EMOTIONS, find_emodb, load_emodb, split
from cloak.neutralizer import active_frames, analyse, frame_level_db, spectral_tilt, syllable_rate


def measure(path) -> tuple[float, float, float]:
    wave, sr = sf.read(str(path), dtype="float32")
    a = analyse(wave, sr)
    rate, _ = syllable_rate(a)
    voiced = (a.f0 > 0) & active_frames(frame_level_db(a))
    lf = np.log(a.f0[a.f0 > 0])
    return rate, float(np.median(spectral_tilt(a)[voiced])), float(np.exp(np.median(lf) - np.percentile(lf, 5)))


def main() -> int:
    root = find_emodb()
    if root is None:
        print("EmoDB not found: set $CLOAK_EMODB or place it at ../shared/data/emodb", file=sys.stderr)
        return 2
    train, _ = split(load_emodb(root))
    rows = {e: [] for e in EMOTIONS}
    for u in train:
        rows[u.emotion].append(measure(u.path))
    print(f"{'emotion':<10} {'n':>3} {'syll/s':>7} {'tilt dB/oct':>12} {'F0/floor':>9}")
    for e in EMOTIONS:
        m = np.mean(rows[e], axis=0)
        print(f"{e:<10} {len(rows[e]):>3} {m[0]:7.2f} {m[1]:12.2f} {m[2]:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
