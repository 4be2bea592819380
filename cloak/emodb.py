"""The Berlin Database of Emotional Speech (EmoDB): metadata, the fixed split, finding a copy.

Official layout: ``wav/NNtttEv.wav`` -- speaker ``NN``, text ``ttt``, emotion letter ``E``,
version ``v``. The project's evaluation split holds out speakers 03 (m) and 08 (f).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

EMOTIONS = ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral")
EMOTION_LETTERS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral"}
# speaker id -> (sex, age), from the EmoDB documentation
SPEAKERS = {
    "03": ("m", 31), "08": ("f", 34), "09": ("f", 21), "10": ("m", 32), "11": ("m", 26),
    "12": ("m", 30), "13": ("f", 32), "14": ("f", 35), "15": ("m", 25), "16": ("f", 31),
}
TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
HELD_OUT_SPEAKERS = ("03", "08")
N_FILES = 535
# SHA-256 over the 535 wav files concatenated in sorted name order (official download.zip)
WAV_SHA256 = "7e15f6425c03ab65b11c72614f68d7b16d37772474bb3b648b0b5fef0bbb7c13"
ENV_VAR = "CLOAK_EMODB"

_NAME = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])\.wav$")


class DatasetError(ValueError):
    """EmoDB is missing, incomplete or not in the official layout."""


@dataclass(frozen=True)
class Utterance:
    """One EmoDB recording and its labels."""

    path: Path
    speaker: str
    text_code: str
    emotion: str
    version: str

    @property
    def label(self) -> int:
        return EMOTIONS.index(self.emotion)

    @property
    def sex(self) -> str:
        return SPEAKERS[self.speaker][0]

    @property
    def age(self) -> int:
        return SPEAKERS[self.speaker][1]

    @property
    def text(self) -> str:
        return TEXTS[self.text_code]

    @property
    def held_out(self) -> bool:
        return self.speaker in HELD_OUT_SPEAKERS


def parse_name(path: str | os.PathLike) -> Utterance:
    """Metadata from an official file name such as ``03a01Fa.wav``."""
    path = Path(path)
    m = _NAME.match(path.name)
    if not m or m.group(1) not in SPEAKERS or m.group(2) not in TEXTS:
        raise DatasetError(f"{path.name}: not an EmoDB file name (expected NNtttEv.wav)")
    speaker, text_code, letter, version = m.groups()
    return Utterance(path, speaker, text_code, EMOTION_LETTERS[letter], version)


def load_emodb(root: str | os.PathLike) -> list[Utterance]:
    """All utterances under ``root/wav`` in sorted name order."""
    wav_dir = Path(root) / "wav"
    if not wav_dir.is_dir():
        raise DatasetError(f"{root}: no wav/ folder; is this an unpacked EmoDB download?")
    return [parse_name(p) for p in sorted(wav_dir.glob("*.wav"))]


def split(utterances: list[Utterance]) -> tuple[list[Utterance], list[Utterance]]:
    """(train, held-out): speakers 03 and 08 are held out everywhere in the project."""
    return [u for u in utterances if not u.held_out], [u for u in utterances if u.held_out]


def checksum(root: str | os.PathLike) -> str:
    """SHA-256 over all wav files concatenated in sorted name order."""
    h = hashlib.sha256()
    for p in sorted((Path(root) / "wav").glob("*.wav")):
        h.update(p.read_bytes())
    return h.hexdigest()


def verify(root: str | os.PathLike, expected_sha256: str = WAV_SHA256) -> None:
    """Raise :class:`DatasetError` unless ``root`` holds the complete official EmoDB."""
    n = len(load_emodb(root))
    if n != N_FILES:
        raise DatasetError(f"{root}: {n} EmoDB wav files, expected {N_FILES}")
    if checksum(root) != expected_sha256:
        raise DatasetError(f"{root}: the wav files do not match the official EmoDB checksum")


def find_emodb(explicit: str | os.PathLike | None = None) -> Path | None:
    """An EmoDB folder: ``explicit``, ``$CLOAK_EMODB``, or ``../shared/data/emodb`` from here or cwd."""
    candidates = [explicit, os.environ.get(ENV_VAR)]
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidates.append(base.parent / "shared" / "data" / "emodb")
    for c in candidates:
        if c and (Path(c) / "wav").is_dir():
            return Path(c)
    return None
