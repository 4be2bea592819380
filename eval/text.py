"""Word error rate on normalized German text, and the signal-to-noise ratio of a cloak."""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

import jiwer
import numpy as np

# Inside a word an apostrophe or hyphen joins ("geht's" -> "gehts", "Eis-Schrank" -> "eisschrank").
_JOINERS = re.compile(r"(?<=\w)['’ʼ](?=\w)|(?<=[^\W\d_])[-‐](?=[^\W\d_])")
# Everything else that is neither a word character nor space goes, except a point or comma
# between digits: numbers stay as written ("3,5", "1.000").
_PUNCTUATION = re.compile(r"(?<!\d)[.,]|[.,](?!\d)|[^\w\s.,]")


def normalize(text: str) -> str:
    """Lowercase (ß stays ß), drop punctuation, keep umlauts and numbers, collapse whitespace."""
    text = unicodedata.normalize("NFC", text).lower()  # lower(), not casefold(), which turns ß into ss
    text = _PUNCTUATION.sub(" ", _JOINERS.sub("", text))
    return " ".join(text.split())


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate: all edits over all reference words, on normalized text."""
    errors, words = word_errors(references, hypotheses)
    return float(errors.sum() / words.sum())


def word_errors(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, on normalized text: the edits (substitutions, deletions, insertions) and the
    reference's words. ``errors.sum() / words.sum()`` is :func:`wer`."""
    refs, hyps = _normalized_pairs(references, hypotheses)
    edits = [(o := jiwer.process_words(r, h)).substitutions + o.deletions + o.insertions for r, h in zip(refs, hyps)]
    return np.asarray(edits, dtype=np.int64), np.asarray([len(r.split()) for r in refs], dtype=np.int64)


def utterance_wers(references: Sequence[str], hypotheses: Sequence[str]) -> list[float]:
    """Word error rate of each (reference, hypothesis) pair, on normalized text."""
    errors, words = word_errors(references, hypotheses)
    return (errors / words).tolist()


def snr_db(clean: np.ndarray, cloaked: np.ndarray) -> float:
    """``10 log10(sum clean² / sum (cloaked - clean)²)`` in dB; ``inf`` when the two are identical."""
    clean = np.asarray(clean, dtype=np.float64)
    cloaked = np.asarray(cloaked, dtype=np.float64)
    if clean.shape != cloaked.shape:
        raise ValueError(f"clean and cloaked audio differ in shape: {clean.shape} vs {cloaked.shape}")
    signal = float(np.sum(clean**2))
    noise = float(np.sum((cloaked - clean) ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _normalized_pairs(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no references to score")
    refs = [normalize(r) for r in references]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(f"reference {empty[0]} has no words after normalization: {references[empty[0]]!r}")
    return refs, [normalize(h) for h in hypotheses]
