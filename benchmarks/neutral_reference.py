"""Measure the neutralizer's reference values on the EmoDB *training* speakers.

Prints, per emotion, the means of: syllable nuclei per second of phonation, median voiced F0
over its floor (the 5th percentile without DIO's octave errors), and the two effort coordinates; then the effort basis itself, and how
far the training speakers' own neutral voices lie apart (``SPEAKER_SD``: the neutralizer's
tolerance is in these units). The neutral row, the basis and the spreads are the constants in
``cloak/neutralizer.py``. Speakers 03 and 08 are never read.

The effort basis: each clip's voiced frames give a mean log envelope in 24 log-spaced bands
(80 Hz - 7.8 kHz), with the frame's mean level removed; subtracting the same speaker's mean
neutral shape leaves what the emotion changed. The two leading principal components of those
differences are the basis (signs: anger and sadness sit on the positive side of neutral).

    OMP_NUM_THREADS=1 python benchmarks/neutral_reference.py   # ~3 min
"""
from __future__ import annotations

import sys

import numpy as np
import soundfile as sf

from cloak.emodb import EMOTIONS, find_emodb, load_emodb, split
from cloak.neutralizer import (EFFORT_EDGES_HZ, Analysis, active_frames, analyse, band_aperiodicity_db, band_matrix,
                               effort_coordinates, frame_level_db, pitch_floor, syllable_rate)


def band_shape(a: Analysis, frames: np.ndarray) -> np.ndarray:
    """Mean envelope of ``frames`` in the effort bands (dB), each frame's own mean level removed."""
    db = 10 * np.log10(a.sp[frames] + 1e-20) @ band_matrix(a.freqs).T
    return (db - db.mean(axis=1, keepdims=True)).mean(axis=0)


def measure(path) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(syllable rate, F0 over its floor, mean voiced band shape in dB, the cues as the neutralizer
    reads them: log F0 over floor, log rate, median effort coordinates, median aperiodicity per band) of one clip."""
    wave, sr = sf.read(str(path), dtype="float32")
    a = analyse(wave, sr)
    rate, _ = syllable_rate(a)
    voiced = (a.f0 > 0) & active_frames(frame_level_db(a))
    lf = np.log(a.f0[a.f0 > 0])
    shape = band_shape(a, voiced)
    over_floor = float(np.median(lf) - pitch_floor(lf))
    cues = np.array([over_floor, np.log(max(rate, 1e-3)), *np.median(effort_coordinates(a)[voiced], axis=0),
                     *band_aperiodicity_db(a, voiced)])
    return rate, float(np.exp(over_floor)), shape, cues


def speaker_sd(speakers: np.ndarray, cues: np.ndarray) -> dict[str, object]:
    """SD across speakers of each speaker's mean neutral cue (the spread of neutral voices)."""
    sd = np.std([cues[speakers == s].mean(axis=0) for s in np.unique(speakers)], axis=0)
    r = [round(float(v), 3 if i < 2 else 2) for i, v in enumerate(sd)]
    return {"pitch_level": r[0], "rate": r[1], "effort": tuple(r[2:4]), "voice_quality": tuple(r[4:])}


def effort_basis(speakers: np.ndarray, emotions: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """``(2, bands)`` leading principal components of the shapes relative to each speaker's neutral."""
    rel = shapes.copy()
    for s in np.unique(speakers):
        rel[speakers == s] -= shapes[(speakers == s) & (emotions == "neutral")].mean(axis=0)
    rel -= rel.mean(axis=1, keepdims=True)
    basis = np.linalg.svd(rel - rel.mean(axis=0), full_matrices=False)[2][:2]
    for k, emotion in enumerate(("anger", "sadness")):
        if (rel[emotions == emotion] @ basis[k]).mean() < 0:
            basis[k] *= -1
    return basis


def main() -> int:
    root = find_emodb()
    if root is None:
        print("EmoDB not found: set $CLOAK_EMODB or place it at ../shared/data/emodb", file=sys.stderr)
        return 2
    train, _ = split(load_emodb(root))
    rates, floors, shapes, cues = zip(*(measure(u.path) for u in train))
    speakers = np.array([u.speaker for u in train])
    emotions = np.array([u.emotion for u in train])
    shapes = np.stack(shapes)
    basis = effort_basis(speakers, emotions, shapes)
    coords = shapes @ basis.T
    print(f"{'emotion':<10} {'n':>3} {'syll/s':>7} {'F0/floor':>9} {'effort 1':>9} {'effort 2':>9}")
    for e in EMOTIONS:
        m = emotions == e
        print(f"{e:<10} {m.sum():>3} {np.mean(np.asarray(rates)[m]):7.2f} {np.mean(np.asarray(floors)[m]):9.2f} "
              f"{coords[m, 0].mean():9.2f} {coords[m, 1].mean():9.2f}")
    print(f"\nEFFORT_EDGES_HZ: geomspace({EFFORT_EDGES_HZ[0]:g}, {EFFORT_EDGES_HZ[-1]:g}, {len(EFFORT_EDGES_HZ)})")
    print("EFFORT_BASIS =", tuple(tuple(round(float(v), 3) for v in b) for b in basis))
    print("NEUTRAL_EFFORT =", tuple(round(float(v), 2) for v in coords[emotions == "neutral"].mean(axis=0)))
    neutral = emotions == "neutral"
    print("SPEAKER_SD =", speaker_sd(speakers[neutral], np.stack(cues)[neutral]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
