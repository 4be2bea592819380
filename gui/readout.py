"""The GUI's readout after a cloak: an independent judge, the speaker's voice, listening quality.

Like :class:`cloak.eval.readout.Readout` (the CLI report's), but for a window: the judge's whole
distribution (for the bars), each part that cannot run reported as "n/a" with its reason instead
of failing the rest, a cancel check between parts, and DNSMOS on non-overlapping windows.

:func:`measure` scores the clean and cloaked audio with

* a *judge* from :mod:`cloak.eval.judges` -- an emotion recognizer of another family that never
  helped craft any cloak (default ``egemaps-svm``: openSMILE functionals and a linear model);
* the speaker similarity of the cloaked voice to the clean one (GE2E, ``resemblyzer``);
* DNSMOS P.835 OVRL of both (non-intrusive, 1-5; needs the ``eval`` extra: ``speechmos``,
  ``onnxruntime``);
* the words Whisper base hears in both (the original's language detected), and their word error
  rate, cloaked against original: no reference text needed.

Each part that cannot run (package missing, clip unusable) is recorded as a one-line reason
instead, so the window can show "n/a" and why. No Qt here: a worker calls it off the GUI thread.
Models are loaded once per process; readouts run one at a time (the lock), so no model is
called from two threads at once.
"""
from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cloak.eval.readout import DEFAULT_JUDGE

DNSMOS_HOP_S = 9  # non-overlapping 9 s windows: one window for a short clip (~0.5 s CPU), not seven
PARTS = ("judge", "speaker", "dnsmos", "words")
Progress = Callable[[int, int], None]
_lock = threading.Lock()


@dataclass(frozen=True)
class Readout:
    """What the readout found; a part that could not run is ``None`` with its reason in ``missing``."""

    judge: str
    judge_family: str = ""
    judge_before: dict[str, float] | None = None
    judge_after: dict[str, float] | None = None
    similarity: float | None = None  # speaker similarity of cloaked to clean (cosine, 1 = same)
    dnsmos_before: float | None = None  # DNSMOS OVRL, 1-5
    dnsmos_after: float | None = None
    words_before: str | None = None  # what Whisper base hears in the original ...
    words_after: str | None = None  # ... and in the cloaked audio
    words_changed: float | None = None  # word error rate of the one against the other (NaN: no words before)
    missing: dict[str, str] = field(default_factory=dict)  # part -> why it is n/a


@functools.lru_cache(maxsize=4)
def _judge(name: str):
    from cloak.eval.judges import load_judge

    return load_judge(name)


@functools.lru_cache(maxsize=1)
def _speaker():
    from cloak.eval.quality import SpeakerSimilarity

    return SpeakerSimilarity()


@functools.lru_cache(maxsize=1)
def _dnsmos():
    from cloak.eval.quality import DNSMOS

    return DNSMOS(hop_seconds=DNSMOS_HOP_S)


def _reason(e: BaseException) -> str:
    if isinstance(e, ImportError):
        return f"{e.name or 'a package'} is not installed (pip install \"cloak[eval]\")"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def measure(clean16: np.ndarray, cloaked16: np.ndarray, judge: str = DEFAULT_JUDGE,
            progress: Progress | None = None) -> Readout:
    """Score 16 kHz mono ``clean16`` and ``cloaked16`` (lengths may differ).

    ``progress(done, len(PARTS))`` is called after each part; an exception it raises (a
    cancel) stops the readout and propagates.
    """
    values: dict = {}
    missing: dict[str, str] = {}
    family = ""
    with _lock:
        for i, part in enumerate(PARTS):
            try:
                if part == "judge":
                    j = _judge(judge)
                    family = j.family
                    p = j.predict_proba([clean16, cloaked16])
                    values["judge_before"], values["judge_after"] = (
                        {c: float(v) for c, v in zip(j.classes, row)} for row in p)
                elif part == "speaker":
                    values["similarity"] = _speaker().similarity(clean16, cloaked16)
                elif part == "dnsmos":
                    meter = _dnsmos()
                    values["dnsmos_before"] = meter.score(clean16).ovrl
                    values["dnsmos_after"] = meter.score(cloaked16).ovrl
                else:
                    from cloak.eval.asr import words_heard

                    heard = words_heard(clean16, cloaked16)
                    values.update(words_before=heard.before, words_after=heard.after, words_changed=heard.changed)
            except Exception as e:  # advisory: a part that fails is shown as n/a with its reason
                missing[part] = _reason(e)
            if progress:
                progress(i + 1, len(PARTS))
    sim = values.get("similarity")
    if sim is not None and not math.isfinite(sim):
        values.pop("similarity")
        missing["speaker"] = "no voice found to compare"
    return Readout(judge, family, missing=missing, **values)


__all__ = ["DEFAULT_JUDGE", "Readout", "measure"]
