"""Is the voice still the user's? Speaker verification of cloaked speech against each speaker's calm voice.

Pairwise similarity of a cloaked clip to its clean original (:class:`cloak.eval.quality.SpeakerSimilarity`)
punishes the very change the cloak makes: a GE2E embedding carries emotion too (a linear probe on it
reads the emotion of EmoDB's held-out speakers at 0.74), so even the speaker's own calm reading of the
same sentence sits far from an angry original. What a listener, or a verification system, asks is
whether the voice is still recognisably the speaker's. This module answers it as speaker verification
does: each speaker is *enrolled* from their clean neutral clips (the mean unit embedding), and every
trial clip is scored against every enrolment, its own and the others'.

Figures: the mean cosine to the own enrolment, identification (top-1 among all enrolled speakers) and
the equal error rate of own against other enrolments (0: own always scores higher than any other).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def enrol(embeddings: Sequence[np.ndarray], speakers: Sequence[str]) -> dict[str, np.ndarray]:
    """Each speaker's enrolment: the unit-norm mean of their unit-norm embeddings ``(dim,)``."""
    if len(embeddings) != len(speakers) or not len(speakers):
        raise ValueError(f"need one speaker per embedding and at least one: {len(embeddings)} embeddings, {len(speakers)} speakers")
    out = {}
    for s in dict.fromkeys(speakers):
        e = np.stack([_unit(x) for x, sp in zip(embeddings, speakers) if sp == s]).mean(axis=0)
        out[s] = _unit(e)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x)
    if n == 0:
        raise ValueError("an embedding of zero length has no direction")
    return x / n


def equal_error_rate(target: np.ndarray, impostor: np.ndarray) -> float:
    """The rate at which false rejections of ``target`` scores equal false acceptances of ``impostor`` scores.

    Swept over every observed score as the threshold; where the two rates cross between thresholds
    their mean at the closest point is taken.
    """
    target, impostor = np.asarray(target, dtype=np.float64), np.asarray(impostor, dtype=np.float64)
    if not target.size or not impostor.size:
        raise ValueError("need at least one target and one impostor score")
    thresholds = np.unique(np.concatenate([target, impostor, [np.inf]]))
    frr = np.array([(target < t).mean() for t in thresholds])  # rises with t
    far = np.array([(impostor >= t).mean() for t in thresholds])  # falls with t
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2)


@dataclass(frozen=True)
class Identity:
    """How well trial clips verify as their own speaker."""

    own: float  # mean cosine to the own enrolment
    others: float  # mean cosine to the other enrolments
    top1: float  # fraction whose own enrolment scores highest of all
    eer: float  # equal error rate, own against other enrolments
    speakers: int
    identified: np.ndarray  # (trials,) bool: the own enrolment scored highest

    @property
    def trials(self) -> int:
        return len(self.identified)


def identify(embeddings: Sequence[np.ndarray], speakers: Sequence[str], enrolments: Mapping[str, np.ndarray]) -> Identity:
    """Score trial ``embeddings`` (spoken by ``speakers``) against every enrolment."""
    if len(embeddings) != len(speakers) or not len(speakers):
        raise ValueError(f"need one speaker per trial and at least one: {len(embeddings)} embeddings, {len(speakers)} speakers")
    missing = sorted(set(speakers) - set(enrolments))
    if missing:
        raise ValueError(f"trial speakers not enrolled: {', '.join(missing)}")
    if len(enrolments) < 2:
        raise ValueError("verification needs at least two enrolled speakers")
    names = list(enrolments)
    scores = np.stack([_unit(e) for e in embeddings]) @ np.stack([enrolments[n] for n in names]).T
    own = np.array([names.index(s) for s in speakers])
    mask = np.zeros_like(scores, dtype=bool)
    mask[np.arange(len(own)), own] = True
    identified = scores.argmax(axis=1) == own
    return Identity(own=float(scores[mask].mean()), others=float(scores[~mask].mean()), top1=float(identified.mean()),
                    eer=equal_error_rate(scores[mask], scores[~mask]), speakers=len(names),
                    identified=identified)
