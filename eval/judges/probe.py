"""A standardized multinomial logistic-regression probe: trained in torch, run in numpy, saved as arrays.

Training minimizes class-balanced cross-entropy + ``l2 * |W|^2`` with full-batch L-BFGS in
float64 (deterministic); ``l2`` is chosen by speaker-grouped cross-validation on the training
speakers only, so held-out speakers never steer the model.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloak.metrics import uar

from .data import CORPORA, corpus_clips, read_wave
from .store import JudgeError, cached_features, load_npz, save_npz

log = logging.getLogger(__name__)

L2_GRID = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1)


@dataclass(frozen=True)
class LinearProbe:
    """``softmax(((x - mean) / scale) @ weight + bias)``; ``weight`` is ``(dim, classes)``."""

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``(N, dim)`` features -> ``(N, classes)`` probabilities."""
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.weight + self.bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "weight": self.weight, "bias": self.bias}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> LinearProbe:
        return cls(a["mean"], a["scale"], a["weight"], a["bias"])


def fit_probe(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float) -> LinearProbe:
    """Fit on ``(N, dim)`` features and integer labels ``y`` with class-balanced weights."""
    import torch

    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    xt = torch.from_numpy((x - mean) / scale)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    cw = torch.from_numpy(np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0))
    w = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt, weight=cw) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearProbe(mean, scale, w.detach().numpy().copy(), b.detach().numpy().copy())


def speaker_folds(speakers: Sequence[str], n_folds: int = 4) -> list[np.ndarray]:
    """Boolean test masks that split the speakers (sorted) round-robin into ``n_folds`` groups."""
    speakers = np.asarray(speakers)
    order = sorted(set(speakers.tolist()))
    groups = [order[i::n_folds] for i in range(n_folds)]
    return [np.isin(speakers, g) for g in groups]


def select_l2(x: np.ndarray, y: np.ndarray, speakers: Sequence[str], n_classes: int,
              grid: Sequence[float] = L2_GRID) -> tuple[float, dict[str, float]]:
    """The ``l2`` of ``grid`` with the best pooled speaker-grouped CV UAR, and the UAR per ``l2``."""
    folds = speaker_folds(speakers)
    scores: dict[str, float] = {}
    for l2 in grid:
        pred = np.empty(len(y), dtype=np.int64)
        for test in folds:
            probe = fit_probe(x[~test], y[~test], n_classes, l2)
            pred[test] = probe.predict_proba(x[test]).argmax(axis=1)
        scores[f"{l2:g}"] = uar(y, pred, n_classes)
    best = max(grid, key=lambda l2: scores[f"{l2:g}"])
    return best, scores


class ProbeJudge:
    """A fixed feature extractor ``(time,) -> (dim,)`` followed by a :class:`LinearProbe`."""

    def __init__(self, name: str, family: str, corpus: str, extract: Callable[[np.ndarray], np.ndarray],
                 probe: LinearProbe, meta: dict):
        self.name, self.family, self.corpus = name, family, corpus
        self.classes = CORPORA[corpus]
        self.extract = extract
        self.probe = probe
        self.meta = meta

    def features(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, dim)`` features of the clips."""
        from . import check_waves

        return np.stack([self.extract(w) for w in check_waves(waves)])

    def predict_proba(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        if len(waves) == 0:
            return np.zeros((0, len(self.classes)))
        return self.probe.predict_proba(self.features(waves))


def load_probe_judge(path: Path, name: str, family: str, corpus: str,
                     extract: Callable[[np.ndarray], np.ndarray]) -> ProbeJudge:
    """A :class:`ProbeJudge` from a verified ``.npz`` written by :func:`train_probe_judge`."""
    arrays, meta = load_npz(path)
    if meta.get("name") != name:
        raise JudgeError(f"{path}: holds judge {meta.get('name')!r}, not {name!r}")
    return ProbeJudge(name, family, corpus, extract, LinearProbe.from_arrays(arrays), meta)


def train_probe_judge(path: Path, name: str, family: str, corpus: str, feature_id: str,
                      extract: Callable[[np.ndarray], np.ndarray]) -> dict:
    """Cache features of the training clips, pick ``l2`` by speaker-grouped CV, fit, score held-out, save."""
    from . import evaluate

    train, held = corpus_clips(corpus)
    n_classes = len(CORPORA[corpus])
    t0 = time.perf_counter()
    x = cached_features(feature_id, [read_wave(c.path) for c in train], extract)
    log.info("%s: %d training feature vectors in %.0f s", name, len(x), time.perf_counter() - t0)
    y = np.array([c.label for c in train])
    l2, cv = select_l2(x, y, [c.speaker for c in train], n_classes)
    meta = {"name": name, "family": family, "corpus": corpus, "classes": list(CORPORA[corpus]),
            "feature_id": feature_id, "l2": l2, "cv_uar_by_l2": cv, "n_train": len(train),
            "train_speakers": sorted({c.speaker for c in train})}
    judge = ProbeJudge(name, family, corpus, extract, fit_probe(x, y, n_classes, l2), meta)
    meta["held_out"] = evaluate(judge, [read_wave(c.path) for c in held], [c.label for c in held])
    save_npz(path, judge.probe.arrays(), meta)
    return meta
