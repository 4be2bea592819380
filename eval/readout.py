"""What an independent listener hears before and after cloaking one file: for reports and the GUI.

The surrogate that crafted a cloak always looks fooled; an independent judge (a recognizer of
another family that never helped craft, :mod:`cloak.eval.judges`) tells the truth. Optionally
the listener-side costs too: speaker similarity to the original, DNSMOS OVRL, and the words Whisper
base hears before and after (``words_changed``: their word error rate, cloaked against clean).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from cloak.eval.judges.data import read_wave

DEFAULT_JUDGE = "egemaps-svm"  # a different family from the surrogate, and cheap (~0.1 s a clip)
FIELDS = ("judge", "judge_before", "judge_after", "judge_p_before", "judge_p_after",
          "speaker_similarity", "dnsmos_before", "dnsmos_after", "words_before", "words_after", "words_changed")


@dataclass
class Readout:
    """Scores (original, cloaked) pairs with one judge and, with ``quality``, the listener metrics."""

    judge_name: str = DEFAULT_JUDGE
    quality: bool = False

    def __post_init__(self) -> None:
        from cloak.eval.judges import load_judge

        self.judge = load_judge(self.judge_name)
        self._speaker = self._dnsmos = None

    def score_waves(self, clean16: np.ndarray, cloaked16: np.ndarray) -> dict[str, str | float]:
        """Judge before/after (class and its probability) and, with ``quality``, the listener metrics."""
        probs = self.judge.predict_proba([clean16, cloaked16])
        before, after = int(probs[0].argmax()), int(probs[1].argmax())
        row: dict[str, str | float] = {
            "judge": self.judge_name, "judge_before": self.judge.classes[before],
            "judge_after": self.judge.classes[after],
            "judge_p_before": float(probs[0, before]), "judge_p_after": float(probs[1, after]),
        }
        if self.quality:
            from cloak.eval.asr import words_heard
            from cloak.eval.quality import DNSMOS, SpeakerSimilarity

            self._speaker = self._speaker or SpeakerSimilarity()
            self._dnsmos = self._dnsmos or DNSMOS()
            row["speaker_similarity"] = self._speaker.similarity(clean16, cloaked16)
            row["dnsmos_before"] = self._dnsmos.score(clean16).ovrl
            row["dnsmos_after"] = self._dnsmos.score(cloaked16).ovrl
            heard = words_heard(clean16, cloaked16)
            row.update(words_before=heard.before, words_after=heard.after, words_changed=heard.changed)
        return row

    def score_files(self, src: str | os.PathLike, dest: str | os.PathLike) -> dict[str, str | float]:
        """:meth:`score_waves` on two audio files (any rate and channels)."""
        return self.score_waves(read_wave(src), read_wave(dest))
