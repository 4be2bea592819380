"""Judges: independent emotion recognizers that score cloaked audio and never help craft it.

Each judge is a different model family, trained on training speakers only (EmoDB without 03
and 08; RAVDESS actors 01-16), and shipped as a verified weights-only checkpoint in
``cloak.models/judges/``. All share one interface::

    judge = load_judge("gru-mel")
    probs = judge.predict_proba([wave, ...])   # 16 kHz mono float32 clips -> (N, len(judge.classes))

Train one reproducibly with ``python -m cloak.eval.judges train NAME``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .data import CORPORA
from .store import JudgeError, judges_dir

__all__ = ["Judge", "JudgeError", "available_judges", "add_judge_parser", "evaluate", "load_judge"]

# name -> (module in this package, corpus, checkpoint file). A module is one family; the probe
# families are trained once per corpus, each checkpoint on that corpus's training speakers only.
REGISTRY: dict[str, tuple[str, str, str]] = {
    "gru-mel": ("gru_mel", "emodb", "gru_mel.pt"),
    "egemaps-svm": ("smile", "emodb", "egemaps_svm.npz"),
    "whisper-probe": ("whisper_probe", "emodb", "whisper_probe.npz"),
    "speaker-probe": ("speaker_probe", "emodb", "speaker_probe.npz"),
    "compare-svm": ("smile", "emodb", "compare_svm.npz"),
    "ravdess-mfcc": ("ravdess_mfcc", "ravdess", "ravdess_mfcc.pt"),
    "ravdess-egemaps": ("smile", "ravdess", "ravdess_egemaps.npz"),
    "ravdess-whisper-probe": ("whisper_probe", "ravdess", "ravdess_whisper_probe.npz"),
    "ravdess-speaker-probe": ("speaker_probe", "ravdess", "ravdess_speaker_probe.npz"),
    "ravdess-compare": ("smile", "ravdess", "ravdess_compare.npz"),
}
HELD_OUT_NAMES = {"emodb": "EmoDB speakers 03+08", "ravdess": "RAVDESS actors 17-20"}


@runtime_checkable
class Judge(Protocol):
    """An emotion recognizer used only to score audio."""

    name: str
    family: str
    corpus: str
    classes: tuple[str, ...]

    def predict_proba(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """16 kHz mono float32 clips -> ``(N, len(classes))`` class probabilities (rows sum to 1)."""
        ...


def _module(name: str):
    if name not in REGISTRY:
        raise JudgeError(f"unknown judge {name!r} (choose from {', '.join(REGISTRY)})")
    return importlib.import_module(f"{__name__}.{REGISTRY[name][0]}")


def checkpoint_path(name: str):
    """Where judge ``name``'s checkpoint ships."""
    if name not in REGISTRY:
        raise JudgeError(f"unknown judge {name!r} (choose from {', '.join(REGISTRY)})")
    return judges_dir() / REGISTRY[name][2]


def load_judge(name: str, path: str | os.PathLike | None = None) -> Judge:
    """Judge ``name`` from its shipped checkpoint (or ``path``), verified against its ``.sha256``."""
    return _module(name).load(path or checkpoint_path(name), name, REGISTRY[name][1])


def available_judges(corpus: str | None = None) -> list[str]:
    """Names of the judges whose checkpoints ship, optionally only those of ``corpus``."""
    if corpus is not None and corpus not in CORPORA:
        raise JudgeError(f"unknown corpus {corpus!r} (choose from {', '.join(CORPORA)})")
    return [n for n, (_, c, f) in REGISTRY.items()
            if (corpus is None or c == corpus) and (judges_dir() / f).is_file()]


def check_waves(waves: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each clip as contiguous float32 ``(time,)``; :class:`JudgeError` for anything unusable."""
    out = []
    for i, w in enumerate(waves):
        w = np.ascontiguousarray(w, dtype=np.float32)
        if w.ndim != 1:
            raise JudgeError(f"clip {i}: expected mono audio of shape (time,), got shape {w.shape}")
        if w.size < 1600:
            raise JudgeError(f"clip {i}: too short ({w.size} samples; at least 0.1 s at 16 kHz needed)")
        if not np.isfinite(w).all():
            raise JudgeError(f"clip {i}: contains NaN or infinite samples")
        out.append(w)
    return out


def evaluate(judge: Judge, waves: Sequence[np.ndarray], labels: Sequence[int]) -> dict:
    """Accuracy, UAR, per-class recall and seconds per clip of ``judge`` on labelled clips."""
    from cloak.metrics import accuracy, recalls, uar

    t0 = time.perf_counter()
    pred = judge.predict_proba(waves).argmax(axis=1)
    seconds = (time.perf_counter() - t0) / max(len(waves), 1)
    n = len(judge.classes)
    return {"n": len(labels), "accuracy": round(accuracy(labels, pred), 4), "uar": round(uar(labels, pred, n), 4),
            "recall": {c: round(float(r), 3) for c, r in zip(judge.classes, recalls(labels, pred, n))},
            "seconds_per_clip": round(seconds, 4)}


def train_judge(name: str, out=None) -> dict:
    """Train judge ``name`` (fixed seeds), write its checkpoint and return the held-out metrics."""
    path = out or checkpoint_path(name)
    return _module(name).train(path, name, REGISTRY[name][1])


def add_judge_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``judge`` (``train NAME`` / ``list``) to an argparse subparsers object; sets ``func``."""
    p = subparsers.add_parser("judge", help="train or list the independent judge recognizers")
    sub = p.add_subparsers(dest="judge_cmd", required=True)
    t = sub.add_parser("train", help="train one judge and print its held-out accuracy and UAR")
    t.add_argument("name", choices=list(REGISTRY))
    t.add_argument("--out", default=None, help="checkpoint path (default: the shipped one)")
    sub.add_parser("list", help="list the shipped judges and their clean held-out figures")
    p.set_defaults(func=run_judge_command)
    return p


def run_judge_command(args: argparse.Namespace) -> int:
    """Run a parsed ``judge`` command; returns the exit status."""
    from pathlib import Path

    if args.judge_cmd == "train":
        path = Path(args.out) if args.out else checkpoint_path(args.name)
        m = train_judge(args.name, path)
        h = m["held_out"]
        print(f"{args.name}: held-out {HELD_OUT_NAMES[m['corpus']]} ({h['n']} clips): "
              f"accuracy {h['accuracy']:.3f}, UAR {h['uar']:.3f}, {h['seconds_per_clip']:.3f} s a clip")
        print("recall: " + ", ".join(f"{c} {r:.2f}" for c, r in h["recall"].items()))
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
        return 0
    names = available_judges()
    width = max(map(len, names), default=0)
    for name in names:
        j = load_judge(name)
        h = j.meta["held_out"]
        print(f"{name:<{width}} {j.corpus:<8} acc {h['accuracy']:.3f} UAR {h['uar']:.3f}  {j.family}")
    return 0
