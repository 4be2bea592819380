"""Where should the neutralizer put the pitch level: above the clip's own floor, or at the speaker's neutral voice?

The neutralizer moves each clip's median F0 to :data:`~cloak.neutralizer.NEUTRAL_F0_OVER_FLOOR`
above the clip's own floor (``neutral_pitch_level``). A shouted or frightened clip raises its floor
with its level, so high aroused voices keep most of their height. This fits a predictor of the
*speaker's* neutral level from one clip of any emotion -- ridge regression on the clip's voiced log-F0
percentiles, its floor and its mean voiced envelope shape (24 bands, level removed) -- on the
training speakers of both corpora (EmoDB without 03+08, RAVDESS actors 01-16; the truth is the mean
median log F0 of each speaker's neutral clips), and prints:

1. how far each rule lands from the speaker's neutral level (median |error| in semitones):
   leave-one-speaker-out on the training speakers, and on the held-out speakers per emotion;
2. the default (thorough) mode as shipped and with the predicted level as its pitch target
   (the part of the disagreement with the floor rule beyond ``--margin`` semitones), on each
   corpus's held-out clips: the independent judges (the Whisper probe helps craft this mode and is
   left out), speaker similarity, DNSMOS and WER, and the paired changes.

    OMP_NUM_THREADS=1 python benchmarks/neutral_pitch.py   # ~40 min on this 2-core CPU
"""
from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from unittest import mock

import numpy as np
import torch

import cloak.neutralizer as nz
from cloak.chain import MODES, Chain
from cloak.eval.bench import held_out
from cloak.eval.compare import Comparison
from cloak.eval.judges import available_judges, load_judge
from cloak.eval.judges.data import CORPORA, corpus_clips, read_wave
from cloak.model import load_recognizer
from neutral_reference import band_shape  # benchmarks/, beside this script

SEMITONE = math.log(2) / 12
RIDGE = 10.0


def pitch_features(a: nz.Analysis) -> np.ndarray | None:
    """Voiced log-F0 percentiles (5, 25, 50, 75, 95), the floor, and the mean voiced band shape (dB); None if
    fewer than 10 voiced frames."""
    voiced = (a.f0 > 0) & nz.active_frames(nz.frame_level_db(a))
    if voiced.sum() < 10:
        return None
    lf = np.log(a.f0[voiced])
    return np.concatenate([np.percentile(lf, [5, 25, 50, 75, 95]), [nz.pitch_floor(lf)], band_shape(a, voiced)])


class Ridge:
    """Ridge regression on standardized features."""

    def __init__(self, x: np.ndarray, y: np.ndarray, penalty: float = RIDGE) -> None:
        self.mean, self.sd, self.bias = x.mean(axis=0), x.std(axis=0) + 1e-9, float(y.mean())
        z = (x - self.mean) / self.sd
        self.weights = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ (y - self.bias))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.bias + ((x - self.mean) / self.sd) @ self.weights


def measure(corpus: str) -> dict[str, np.ndarray]:
    """Features, speakers, emotions, held-out flags and the clip-floor rule's level of every clip with voice."""
    rows = []
    for clip in (c for part in corpus_clips(corpus) for c in part):
        a = nz.analyse(read_wave(clip.path), 16_000)
        x = pitch_features(a)
        if x is not None:
            rows.append((x, f"{corpus}:{clip.speaker}", CORPORA[corpus][clip.label], clip.held_out, nz.neutral_pitch_level(a)))
    x, speakers, emotions, held, floor_rule = zip(*rows)
    return {"x": np.stack(x), "speaker": np.array(speakers), "emotion": np.array(emotions), "held": np.array(held),
            "floor_rule": np.array(floor_rule)}


def neutral_levels(d: dict[str, np.ndarray]) -> np.ndarray:
    """Each clip's truth: the mean median voiced log F0 of its speaker's neutral clips."""
    median = d["x"][:, 2]
    mean = {s: median[(d["speaker"] == s) & (d["emotion"] == "neutral")].mean() for s in np.unique(d["speaker"])}
    return np.array([mean[s] for s in d["speaker"]])


def report_errors(d: dict[str, np.ndarray], truth: np.ndarray, predictor: Ridge) -> None:
    """Median |error| (semitones) of both rules: leave-one-speaker-out on training speakers, then held out."""
    train = ~d["held"]
    loso = np.empty(train.sum())
    for s in np.unique(d["speaker"][train]):
        inside = d["speaker"][train] == s
        fit = Ridge(d["x"][train][~inside], truth[train][~inside])
        loso[inside] = fit(d["x"][train][inside])
    def err(level: np.ndarray, rows: np.ndarray) -> float:
        return float(np.median(np.abs(level[rows] - truth[rows])) / SEMITONE)
    print(f"training speakers ({len(np.unique(d['speaker'][train]))}, leave one speaker out): floor rule "
          f"{err(d['floor_rule'], train):.1f} st, predicted {float(np.median(np.abs(loso - truth[train])) / SEMITONE):.1f} st")
    predicted = predictor(d["x"])
    print(f"{'held out, by emotion':28s} {'n':>4} {'floor rule':>11} {'predicted':>10}")
    for e in sorted(set(d["emotion"][d["held"]])):
        rows = d["held"] & (d["emotion"] == e)
        print(f"{e:28s} {rows.sum():4d} {err(d['floor_rule'], rows):8.1f} st {err(predicted, rows):7.1f} st")
    print(f"{'all held out':28s} {d['held'].sum():4d} {err(d['floor_rule'], d['held']):8.1f} st "
          f"{err(predicted, d['held']):7.1f} st", flush=True)


def predicted_level(predictor: Ridge, margin_st: float,
                    floor_rule: Callable[[nz.Analysis], float] = nz.neutral_pitch_level) -> Callable[[nz.Analysis], float]:
    """The neutralizer's pitch target moved from the floor rule toward the prediction, all but ``margin_st``."""
    def level(a: nz.Analysis) -> float:
        rule, x = floor_rule(a), pitch_features(a)
        if x is None:
            return rule
        gap = float(predictor(x)) - rule
        return rule + math.copysign(max(abs(gap) - margin_st * SEMITONE, 0.0), gap)
    return level


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="emodb,ravdess", help="held-out clips to cloak, comma-separated (default: %(default)s)")
    p.add_argument("--margin", type=float, default=4.0, help="semitones of disagreement left to the floor rule (default: %(default)s)")
    p.add_argument("--limit", type=int, help="only the first N held-out clips of each corpus")
    args = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    parts = [measure(c) for c in CORPORA]
    d = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    truth = neutral_levels(d)
    predictor = Ridge(d["x"][~d["held"]], truth[~d["held"]])
    report_errors(d, truth, predictor)
    mode, surrogate = MODES["thorough"], load_recognizer()
    target = predicted_level(predictor, args.margin)
    for corpus in args.corpus.split(","):
        clips = held_out(corpus, args.limit)
        compare = Comparison(clips, [load_judge(n) for n in available_judges(corpus) if "whisper" not in n])
        print(f"\n{corpus} held-out ({len(clips.waves)} clips): accuracy per judge (hiding ratio)", flush=True)
        runs = {"clean": compare.score(clips.waves)}
        print(compare.row("clean", runs["clean"]), flush=True)
        for name, level in (("thorough (shipped)", nz.neutral_pitch_level), (f"predicted beyond {args.margin:g} st", target)):
            with mock.patch.object(nz, "neutral_pitch_level", level):
                chain = Chain(surrogate, mode)
                runs[name] = compare.score([chain.cloak(w, 16_000)[0] for w in clips.waves])
            print(compare.row(name, runs[name]), flush=True)
        shipped, predicted = runs["thorough (shipped)"], runs[f"predicted beyond {args.margin:g} st"]
        print("predicted - shipped, paired over the clips (95 % bootstrap interval):")
        print("\n".join(compare.changes(predicted, shipped)), flush=True)
    print(f"\n{(time.time() - t0) / 60:.0f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
