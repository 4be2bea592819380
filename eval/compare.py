"""Paired comparison of cloak variants on one corpus's held-out clips, as the benchmarks print it.

Each variant's outputs are scored by the independent judges (accuracy and the probability of the
true emotion per clip), GE2E similarity to the clean clip, DNSMOS OVRL (every ``dnsmos_every``-th
clip) and Whisper-base word errors; two variants compare clip by clip with the bench's own
bootstrap intervals.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cloak.eval.asr import make_transcriber
from cloak.eval.bench import LANGUAGES, Clips, bootstrap_interval, hiding_ratio, ratio_increase_interval
from cloak.eval.judges.data import CORPORA
from cloak.eval.quality import DNSMOS, SpeakerSimilarity
from cloak.eval.text import word_errors


@dataclass
class Scores:
    """One variant's per-clip figures."""

    hit: dict[str, np.ndarray]  # judge -> right or wrong per clip
    truth: dict[str, np.ndarray]  # judge -> probability of the true emotion per clip
    similarity: np.ndarray
    errors: np.ndarray  # word edits per clip
    words: np.ndarray  # reference words per clip
    dnsmos: float  # mean OVRL over every dnsmos_every-th clip


class Comparison:
    """Scores variants of one corpus's held-out ``clips`` with ``judges`` and the listener's figures.

    >>> c = Comparison(held_out("ravdess"), judges)
    >>> print(c.row("clean", c.score(c.clips.waves)))
    """

    def __init__(self, clips: Clips, judges: Sequence, dnsmos_every: int = 4) -> None:
        self.clips, self.judges, self.dnsmos_every = clips, list(judges), dnsmos_every
        self.chance = 1 / len(CORPORA[clips.corpus])
        self.asr = make_transcriber("whisper", language=LANGUAGES[clips.corpus])
        self.speaker, self.quality = SpeakerSimilarity(), DNSMOS()
        self.clean: Scores | None = None

    def score(self, outs: Sequence[np.ndarray]) -> Scores:
        """Score one variant; the first one scored is the clean reference of the hiding ratios."""
        y, n = self.clips.labels, np.arange(len(outs))
        probs = {j.name: np.asarray(j.predict_proba(outs)) for j in self.judges}
        errors, words = word_errors(self.clips.texts, [self.asr.transcribe(o, 16_000) for o in outs])
        s = Scores({j: p.argmax(1) == y for j, p in probs.items()}, {j: p[n, y] for j, p in probs.items()},
                   np.array([self.speaker.similarity(w, o) for w, o in zip(self.clips.waves, outs)]), errors, words,
                   float(np.mean([self.quality.score(o).ovrl for o in outs[:: self.dnsmos_every]])))
        self.clean = self.clean or s
        return s

    def row(self, name: str, s: Scores) -> str:
        """Accuracy per judge (hiding ratio against the clean scores), similarity, DNSMOS, WER."""
        acc = "  ".join(f"{j} {hit.mean():.3f} ({hiding_ratio(self.clean.hit[j].mean(), hit.mean(), self.chance):.2f})"
                        for j, hit in s.hit.items())
        return (f"{name:24s} {acc}  similarity {s.similarity.mean():.3f}  DNSMOS {s.dnsmos:.2f}  "
                f"WER {s.errors.sum() / s.words.sum():.3f}")

    @staticmethod
    def changes(after: Scores, before: Scores) -> list[str]:
        """``after - before`` paired over the clips: each judge's p(true emotion), similarity, WER (95 % intervals)."""
        def change(a: np.ndarray, b: np.ndarray) -> str:
            lo, hi = bootstrap_interval(a, b, seed=0)
            return f"{a.mean() - b.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]"

        lines = [f"  {j + ' p(true emotion)':40s} {change(after.truth[j], before.truth[j])}" for j in before.truth]
        lines.append(f"  {'speaker similarity':40s} {change(after.similarity, before.similarity)}")
        lo, hi = ratio_increase_interval(before.errors, after.errors, before.words, seed=0)
        lines.append(f"  {'WER':40s} {(after.errors.sum() - before.errors.sum()) / before.words.sum():+.3f} "
                     f"[{lo:+.3f}, {hi:+.3f}]")
        return lines


__all__ = ["Comparison", "Scores"]
