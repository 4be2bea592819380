"""A learned emotional-to-neutral envelope converter, measured against the effort cue it would replace.

The issue's lead: the corpora are parallel (every speaker reads the same sentences in every
emotion), so how the spectral envelope changes from an emotional reading to the same speaker's
neutral reading of the same sentence can be learned frame by frame. Each training clip's voiced
frames (10 ms) give a band shape (the effort cue's 24 log-spaced bands, 80 Hz - 7.8 kHz, dB, the
frame's mean level removed); dynamic time warping (steps (1,1), (1,2), (2,1)) pairs each emotional
frame with a frame of the neutral reading; a ridge regression predicts the neutral frame's shape
minus the emotional one from the frame, its context (+-20 and +-50 ms) and the clip's mean and SD
shape. Its fit is reported by held-out speaker groups (R^2), beside the same fit of one neutral
reading to another (what alignment and regression to the mean alone explain; RAVDESS only: in
EmoDB's training speakers one sentence was read neutrally twice, so that control reads nan).

Then the neutral mode runs on one corpus's held-out clips with the prediction, smoothed over
``--smooth`` seconds, in place of the effort cue or on top of it, and a control on top of it: each
frame's shape pulled toward the clip's mean shape by as many dB as the converter would move it
(part of any frame-level fit is this regression to the mean). It prints the independent judges'
accuracy (lower hides more), speaker similarity to the clean clip, DNSMOS OVRL (every 4th clip) and
Whisper-base WER. Speakers 03+08 and RAVDESS actors 17-20 are never trained on.

    OMP_NUM_THREADS=1 python benchmarks/learned_envelope.py --corpus emodb                          # ~30 min
    OMP_NUM_THREADS=1 python benchmarks/learned_envelope.py --corpus ravdess --train emodb,ravdess  # ~70 min
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from unittest import mock

import numpy as np
import torch

import cloak.neutralizer as neutralizer
from cloak.chain import MODES, Chain
from cloak.eval.asr import make_transcriber
from cloak.eval.bench import LANGUAGES, held_out
from cloak.eval.judges import available_judges, load_judge
from cloak.eval.judges.data import CORPORA, corpus_clips, read_wave
from cloak.eval.quality import DNSMOS, SpeakerSimilarity
from cloak.eval.text import word_errors
from cloak.model import load_recognizer
from voice_identity import sentence_key  # benchmarks/, beside this script

CONTEXT = (-5, -2, 2, 5)  # neighbouring frames read, in 10 ms frames
ALPHA = 1e4  # ridge penalty (R^2 by speaker groups is flat from 1e2 to 1e4)


def voiced_shapes(a: neutralizer.Analysis) -> tuple[np.ndarray, np.ndarray]:
    """(voiced mask per frame, ``(voiced frames, bands)`` band shapes in dB with each frame's mean level removed)."""
    voiced = (a.f0 > 0) & neutralizer.active_frames(neutralizer.frame_level_db(a))
    db = 10 * np.log10(a.sp[voiced] @ neutralizer.band_matrix(a.freqs).T + 1e-20)
    return voiced, db - db.mean(axis=1, keepdims=True)


def inputs(shapes: np.ndarray, step: int) -> np.ndarray:
    """Regression inputs per voiced frame: its shape, its neighbours' (``step`` frames per 10 ms), the clip's mean and SD, 1."""
    n = len(shapes)
    idx = np.arange(n)
    context = [shapes[np.clip(idx + step * o, 0, n - 1)] for o in CONTEXT]
    clip = [np.broadcast_to(shapes.mean(axis=0), shapes.shape), np.broadcast_to(shapes.std(axis=0), shapes.shape)]
    return np.concatenate([shapes, *context, *clip, np.ones((n, 1))], axis=1)


def align(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """For each row of ``a``, the index of the row of ``b`` it is warped to (``None`` if the lengths differ over 2x)."""
    n, m = len(a), len(b)
    if min(n, m) < 10 or max(n, m) > 2 * min(n, m) - 2:
        return None
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    total = np.full((n + 1, m + 1), np.inf)  # total[i, j]: best path ending at a[i-1], b[j-1]
    came = np.zeros((n + 1, m + 1), np.int8)
    total[1, 1] = cost[0, 0]
    inf = np.array([np.inf])
    for i in range(2, n + 1):
        steps = np.stack([total[i - 1, :m], np.concatenate([inf, total[i - 1, : m - 1]]), total[i - 2, :m]])
        came[i, 1:] = steps.argmin(axis=0)
        total[i, 1:] = cost[i - 1] + steps[came[i, 1:], np.arange(m)]
    if not np.isfinite(total[n, m]):
        return None
    match = np.zeros(n, dtype=int)
    i, j = n, m
    while (i, j) != (1, 1):
        match[i - 1] = j - 1
        step = came[i, j]
        if step == 2:  # (2, 1): the skipped row of a goes with the same row of b
            match[i - 2] = j - 1
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j - 2) if step == 1 else (i - 2, j - 1)
    return match


def training_shapes(corpus: str) -> tuple[list, dict[str, np.ndarray]]:
    """The corpus's training clips and each one's voiced band shapes at 10 ms."""
    train, _ = corpus_clips(corpus)
    return train, {c.path.name: voiced_shapes(neutralizer.analyse(read_wave(c.path), 16_000))[1][::2] for c in train}


def pairs(corpus: str, train: list, shapes: dict[str, np.ndarray],
          neutral_to_neutral: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, target shape change, speaker) per voiced 10 ms frame of the training clips paired
    with the same speaker's neutral reading of the same sentence (or, as the control, neutral with neutral)."""
    neutral = CORPORA[corpus].index("neutral")
    by_sentence: dict[tuple[str, ...], list] = {}
    for c in train:
        if c.label == neutral:  # RAVDESS's two repetitions of a statement count as one sentence here
            by_sentence.setdefault(sentence_key(corpus, c.path.name, c.speaker)[:2], []).append(c)
    X, Y, speakers = [], [], []
    for c in train:
        if (c.label == neutral) != neutral_to_neutral:
            continue
        src = shapes[c.path.name]
        if len(src) < 10:  # nearly unvoiced: nothing to align
            continue
        for partner in by_sentence.get(sentence_key(corpus, c.path.name, c.speaker)[:2], []):
            dst = shapes[partner.path.name]
            match = None if partner is c or len(dst) < 10 else align(src - src.mean(axis=0), dst - dst.mean(axis=0))
            if match is not None:
                X.append(inputs(src, 1))
                Y.append(dst[match] - src)
                speakers += [f"{corpus}{c.speaker}"] * len(src)
    return np.concatenate(X), np.concatenate(Y), np.array(speakers)


def ridge(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    reg = ALPHA * np.eye(X.shape[1])
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(X.T @ X + reg, X.T @ Y)


def grouped_r2(X: np.ndarray, Y: np.ndarray, speakers: np.ndarray, folds: int = 4) -> float:
    """R^2 of the ridge fit on speakers it was not fitted on (speakers split into ``folds`` groups)."""
    names = np.unique(speakers)
    folds = min(folds, len(names))
    if folds < 2:
        return float("nan")
    residual = total = 0.0
    for k in range(folds):
        test = np.isin(speakers, names[k::folds])
        W = ridge(X[~test], Y[~test])
        residual += float(((Y[test] - X[test] @ W) ** 2).sum())
        total += float(((Y[test] - Y[~test].mean(axis=0)) ** 2).sum())
    return 1.0 - residual / total


def shape_gain(change_of: Callable[[np.ndarray], np.ndarray], smooth_s: float):
    """An ``_effort_gain_db`` replacement: ``change_of(voiced band shapes)`` (dB per band and voiced frame)
    x the effort cue's amount, smoothed over ``smooth_s``; its median over the voiced frames for the rest."""
    edges = np.asarray(neutralizer.EFFORT_EDGES_HZ)
    centres = np.log(np.sqrt(edges[:-1] * edges[1:]))

    def gain(a: neutralizer.Analysis, cfg: neutralizer.NeutralizeConfig) -> tuple[np.ndarray, np.ndarray]:
        voiced, shapes = voiced_shapes(a)
        if voiced.sum() < 10:
            return np.zeros_like(a.sp), np.zeros(a.sp.shape[1])
        change = cfg.amount("effort") * change_of(shapes)
        static = np.median(change, axis=0)
        per_frame = np.tile(static, (len(a.f0), 1))
        per_frame[voiced] = change
        k = neutralizer._frames(smooth_s)
        per_frame = np.stack([neutralizer._moving_average(b, k) for b in per_frame.T], axis=1)
        to_bins = np.stack([np.interp(np.log(np.maximum(a.freqs, 1.0)), centres, np.eye(len(centres))[b])
                            for b in range(len(centres))])
        return per_frame @ to_bins, static @ to_bins
    return gain


def learned(W: np.ndarray, scale: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """The converter's predicted change (5 ms frames: the 10 ms context is 2 frames a step)."""
    return lambda shapes: scale * (inputs(shapes, 2) @ W)


def flattening_like(W: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The control: each frame's shape pulled toward the clip's mean shape, by as many dB on average as the converter moves it."""
    def change(shapes: np.ndarray) -> np.ndarray:
        spread = shapes - shapes.mean(axis=0)
        return -spread * np.abs(learned(W)(shapes)).mean() / max(float(np.abs(spread).mean()), 1e-6)
    return change


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", choices=("emodb", "ravdess"), default="emodb", help="held-out clips to cloak")
    p.add_argument("--train", default="emodb", help="training corpora, comma-separated (default: %(default)s)")
    p.add_argument("--smooth", type=float, default=0.05, help="smoothing of the learned change, s (default: %(default)s)")
    args = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    corpora = {c: training_shapes(c) for c in args.train.split(",")}
    for control in (False, True):
        parts = [pairs(c, *corpora[c], control) for c in corpora]
        X, Y, speakers = (np.concatenate(z) for z in zip(*parts))
        if not control:
            W = ridge(X, Y)
        print(f"{'neutral -> neutral (control)' if control else 'emotional -> neutral'}: {len(X)} frames of "
              f"{len(np.unique(speakers))} speakers, mean |change| {np.abs(Y).mean():.2f} dB, "
              f"R^2 on unseen speakers {grouped_r2(X, Y, speakers):.3f}", flush=True)
    print(f"trained in {time.time() - t0:.0f} s\n")

    clips = held_out(args.corpus)
    judges = [load_judge(n) for n in available_judges(args.corpus) if "whisper" not in n]  # the probe: slow, and it crafts the default mode
    dnsmos, speaker, model = DNSMOS(), SpeakerSimilarity(), load_recognizer()
    asr = make_transcriber("whisper", language=LANGUAGES[args.corpus])
    print(f"{args.corpus} held-out ({len(clips.waves)} clips), neutral mode; accuracy per judge (lower hides more)")
    effort = neutralizer._effort_gain_db

    def on_top(change_of: Callable[[np.ndarray], np.ndarray]):
        extra = shape_gain(change_of, args.smooth)
        return lambda a, cfg: tuple(e + g for e, g in zip(effort(a, cfg), extra(a, cfg)))

    variants = (("clean", None),
                ("effort cue (the shipped neutral mode)", effort),
                ("learned, in place of the effort cue", shape_gain(learned(W), args.smooth)),
                ("learned at half, on top of the effort cue", on_top(learned(W, 0.5))),
                ("learned, on top of the effort cue", on_top(learned(W))),
                ("control: as much flattening, on top", on_top(flattening_like(W))))
    for name, gain in variants:
        if gain is None:
            outs = clips.waves
        else:
            with mock.patch.object(neutralizer, "_effort_gain_db", gain):
                chain = Chain(model, MODES["neutral"])
                outs = [chain.cloak(w, 16_000)[0] for w in clips.waves]
        accuracy = "  ".join(f"{j.name} {np.mean(np.asarray(j.predict_proba(outs)).argmax(axis=1) == clips.labels):.3f}"
                             for j in judges)
        sim = np.mean([speaker.similarity(w, o) for w, o in zip(clips.waves, outs)])
        ovrl = np.mean([dnsmos.score(o).ovrl for o in outs[::4]])
        errors, words = word_errors(clips.texts, [asr.transcribe(o, 16_000) for o in outs])
        print(f"{name:42s} {accuracy}  similarity {sim:.3f}  DNSMOS {ovrl:.3f}  WER {errors.sum() / words.sum():.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
