"""The judges' training and held-out clips: EmoDB (speakers 03+08 held out) and RAVDESS (17-20 held out).

A :class:`Clip` is a path, an integer label in its corpus' class order, a speaker and whether it
is held out. Waves are read as float32 mono at 16 kHz.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from cloak import emodb
from cloak.audio import resample, to_mono
from cloak.features import SAMPLE_RATE

from .store import JudgeError

# RAVDESS emotion codes 01..08 in order
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
RAVDESS_HELD_OUT = ("17", "18", "19", "20")
RAVDESS_ENV_VAR = "CLOAK_RAVDESS"
_RAVDESS_NAME = re.compile(r"^03-01-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.flac$")
CORPORA = {"emodb": emodb.EMOTIONS, "ravdess": RAVDESS_EMOTIONS}


@dataclass(frozen=True)
class Clip:
    """One labelled recording."""

    path: Path
    label: int
    speaker: str
    held_out: bool


def read_wave(path: str | os.PathLike) -> np.ndarray:
    """A file as float32 mono ``(time,)`` at 16 kHz."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(resample(to_mono(data), rate, SAMPLE_RATE), dtype=np.float32)


def emodb_clips(root: str | os.PathLike | None = None) -> list[Clip]:
    """All 535 EmoDB clips in name order; speakers 03 and 08 are held out."""
    found = emodb.find_emodb(root)
    if found is None:
        raise JudgeError("EmoDB not found: set $CLOAK_EMODB or place it at ../shared/data/emodb")
    return [Clip(u.path, u.label, u.speaker, u.held_out) for u in emodb.load_emodb(found)]


def find_ravdess(explicit: str | os.PathLike | None = None) -> Path | None:
    """The RAVDESS ``flac`` folder: ``explicit``, ``$CLOAK_RAVDESS`` or ``../shared/data/ravdess/flac``."""
    candidates = [explicit, os.environ.get(RAVDESS_ENV_VAR)]
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidates.append(base.parent / "shared" / "data" / "ravdess" / "flac")
    for c in candidates:
        if c and Path(c).is_dir() and any(Path(c).glob("03-01-*.flac")):
            return Path(c)
    return None


def ravdess_clips(root: str | os.PathLike | None = None) -> list[Clip]:
    """RAVDESS speech clips in name order; actors 17-20 are held out."""
    found = find_ravdess(root)
    if found is None:
        raise JudgeError("RAVDESS not found: set $CLOAK_RAVDESS or place it at ../shared/data/ravdess/flac")
    clips = []
    for p in sorted(found.glob("*.flac")):
        m = _RAVDESS_NAME.match(p.name)
        if not m:
            raise JudgeError(f"{p.name}: not a RAVDESS speech file name (03-01-EE-II-SS-RR-AA.flac)")
        actor = m.group(5)
        clips.append(Clip(p, int(m.group(1)) - 1, actor, actor in RAVDESS_HELD_OUT))
    return clips


def corpus_clips(corpus: str) -> tuple[list[Clip], list[Clip]]:
    """(train, held-out) clips of ``corpus``."""
    if corpus not in CORPORA:
        raise JudgeError(f"unknown corpus {corpus!r} (choose from {', '.join(CORPORA)})")
    clips = emodb_clips() if corpus == "emodb" else ravdess_clips()
    return [c for c in clips if not c.held_out], [c for c in clips if c.held_out]
