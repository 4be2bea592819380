"""Classification metrics for imbalanced emotion classes: accuracy, UAR, per-class recall, confusion."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts; rows are true classes, columns predictions."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return cm


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if t.size else float("nan")


def recalls(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Recall per class; NaN for a class absent from ``y_true``."""
    cm = confusion(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def uar(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> float:
    """Unweighted average recall: the mean recall over classes present in ``y_true``."""
    r = recalls(y_true, y_pred, n_classes)
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")
