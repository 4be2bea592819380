"""Speech recognizers behind one interface, and a transcript cache keyed by audio content.

Every backend takes float32 mono audio at any rate, resamples it to :data:`ASR_RATE` and
returns plain text. ``whisper`` runs offline with the bundled multilingual Whisper base
model; ``google`` sends audio to Google's Web Speech API (opt-in); ``sphinx`` runs offline
but knows only English.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

import ctranslate2
import faster_whisper
import numpy as np
import speech_recognition as sr

from cloak.audio import first_line, resample
from cloak.whisper_bundle import WHISPER_BEAM_SIZE, WHISPER_BUNDLED, WHISPER_THREADS, ASRError, load_whisper
from cloak.eval.text import normalize, wer

log = logging.getLogger(__name__)

ASR_RATE = 16_000  # Whisper, Google and the bundled Sphinx model all work on 16 kHz mono
GOOGLE_ENDPOINT = "http://www.google.com/speech-api/v2/recognize"  # SpeechRecognition's default
GOOGLE_TAGS = {"de": "de-DE", "en": "en-US"}  # bare language codes -> the region tags Google wants
SPHINX_LANGUAGES = ("en", "en-US")  # SpeechRecognition ships only the US English model


class Transcriber(ABC):
    """Speech to text. ``name`` is the backend, ``identity`` the model and settings that shape its output."""

    name: str
    language: str
    identity: str

    def transcribe(self, wave: np.ndarray, sample_rate: int) -> str:
        """The text spoken in float32 mono ``wave`` ``(time,)`` sampled at ``sample_rate``."""
        return self._recognize(to_asr_rate(wave, sample_rate))

    @abstractmethod
    def _recognize(self, wave: np.ndarray) -> str:
        """The text spoken in ``wave``: float32 mono ``(time,)`` at :data:`ASR_RATE`."""


def to_asr_rate(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Check float mono ``(time,)`` audio and resample it to contiguous float32 at :data:`ASR_RATE`."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ASRError(f"expected mono audio of shape (time,), got shape {wave.shape}")
    if wave.size == 0:
        raise ASRError("cannot transcribe empty audio")
    if not np.isfinite(wave).all():
        raise ASRError("cannot transcribe audio with NaN or infinite samples")
    if sample_rate <= 0:
        raise ASRError(f"sample rate must be positive, got {sample_rate}")
    return np.ascontiguousarray(resample(wave, sample_rate, ASR_RATE), dtype=np.float32)


# --- whisper (offline, bundled model) -------------------------------------------------------

class WhisperTranscriber(Transcriber):
    """Offline faster-whisper; ``model`` is ``None`` (bundled base), a CTranslate2 folder or a model name."""

    name = "whisper"

    def __init__(self, language: str = "de", model: str | os.PathLike | None = None,
                 beam_size: int = WHISPER_BEAM_SIZE, cpu_threads: int = WHISPER_THREADS):
        if beam_size < 1:
            raise ASRError(f"whisper: beam_size must be at least 1, got {beam_size}")
        if cpu_threads < 1:
            raise ASRError(f"whisper: cpu_threads must be at least 1, got {cpu_threads}")
        if model is not None and Path(model).is_dir():
            model = str(Path(model).resolve())
        self.language = language
        self.model = None if model is None else str(model)
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        # Everything that shapes a transcript belongs to the identity, so a cache never mixes them.
        omp = os.environ.get("OMP_NUM_THREADS", "unset")
        self.identity = (f"{self.model or WHISPER_BUNDLED} beam={beam_size} threads={cpu_threads} omp={omp} "
                         f"faster-whisper={faster_whisper.__version__} ctranslate2={ctranslate2.__version__}")

    def _recognize(self, wave: np.ndarray) -> str:
        whisper = load_whisper(self.model, self.cpu_threads)
        try:
            segments, _ = whisper.transcribe(wave, language=self.language, beam_size=self.beam_size,
                                             condition_on_previous_text=False, vad_filter=False)
            return " ".join(s.text.strip() for s in segments).strip()
        except ValueError as e:  # e.g. an unknown language code
            raise ASRError(f"whisper: {first_line(e)}") from e


@dataclass(frozen=True)
class WordsHeard:
    """What Whisper base hears in a recording before and after a change, in the original's language."""

    language: str
    before: str
    after: str

    @property
    def changed(self) -> float:
        """Word error rate of ``after`` against ``before`` (0: the same words); NaN when ``before`` has none."""
        return wer([self.before], [self.after]) if normalize(self.before) else math.nan


def words_heard(clean: np.ndarray, changed: np.ndarray, sample_rate: int = ASR_RATE) -> WordsHeard:
    """Whisper base (beam 5) on float32 mono ``clean`` and ``changed`` (lengths may differ): the language
    detected in ``clean`` and kept for ``changed``, so no reference text is needed.

    Up to 30 s each, as the words guard transcribes (:func:`cloak.words.transcribe`: a window of the
    clip and 2 s, one encoding for the language and the words; about 0.5 s a clip, a quarter of a
    30 s window's cost), so where the thorough mode's guard reads a clip in one piece (up to about 18 s)
    ``before`` is the transcript it kept; longer ones as the bench scores WER (faster-whisper, 30 s windows)."""
    from cloak.whisper_torch import MAX_SECONDS as GUARD_MAX_S  # torch, imported only when words are read
    from cloak.words import transcribe

    clean, changed = to_asr_rate(clean, sample_rate), to_asr_rate(changed, sample_rate)
    if max(len(clean), len(changed)) <= GUARD_MAX_S * ASR_RATE:
        before = transcribe(clean)
        return WordsHeard(before.language, before.text, transcribe(changed, before.language).text)
    language = load_whisper().detect_language(clean)[0]
    asr = WhisperTranscriber(language)
    return WordsHeard(language, asr.transcribe(clean, ASR_RATE), asr.transcribe(changed, ASR_RATE))


# --- google (online, opt-in) and sphinx (offline, English) ----------------------------------

class GoogleTranscriber(Transcriber):
    """Google's Web Speech API via SpeechRecognition; the audio leaves this machine."""

    name = "google"

    def __init__(self, language: str = "de", endpoint: str = GOOGLE_ENDPOINT, key: str | None = None,
                 timeout: float = 15.0):
        self.language = language
        self.endpoint = endpoint
        self.key = key
        self.timeout = timeout
        self.identity = endpoint
        log.warning("google ASR: audio is sent to %s and leaves this machine", endpoint)

    def _recognize(self, wave: np.ndarray) -> str:
        recognizer = sr.Recognizer()
        recognizer.operation_timeout = self.timeout
        try:
            return recognizer.recognize_google(_audio_data(wave), key=self.key, endpoint=self.endpoint,
                                               language=GOOGLE_TAGS.get(self.language, self.language))
        except sr.UnknownValueError:
            return ""
        except (sr.RequestError, OSError) as e:  # OSError: a timeout or reset while reading the reply
            raise ASRError(f"google: cannot reach the Google speech API (offline?): {first_line(e)}") from e
        except (ValueError, KeyError, TypeError) as e:
            raise ASRError(f"google: unexpected reply from {self.endpoint}: {first_line(e)}") from e


class SphinxTranscriber(Transcriber):
    """Offline CMU PocketSphinx via SpeechRecognition; US English only."""

    name = "sphinx"
    identity = "pocketsphinx en-US"

    def __init__(self, language: str = "en"):
        if language not in SPHINX_LANGUAGES:
            raise ASRError(f"sphinx: only English (en) is available, not {language!r}; use the whisper backend")
        self.language = language

    def _recognize(self, wave: np.ndarray) -> str:
        if importlib.util.find_spec("pocketsphinx") is None:
            raise ASRError("sphinx: pocketsphinx is not installed (pip install 'cloak[sphinx]')")
        try:
            return sr.Recognizer().recognize_sphinx(_audio_data(wave), language="en-US")
        except sr.UnknownValueError:
            return ""
        except sr.RequestError as e:  # pocketsphinx or its model missing
            raise ASRError(f"sphinx: {first_line(e)}") from e


BACKENDS: dict[str, type[Transcriber]] = {
    "whisper": WhisperTranscriber, "google": GoogleTranscriber, "sphinx": SphinxTranscriber,
}


def make_transcriber(backend: str = "whisper", language: str = "de", **opts) -> Transcriber:
    """A transcriber for ``backend`` (``whisper``, ``google`` or ``sphinx``); ``opts`` go to its constructor."""
    if backend not in BACKENDS:
        raise ASRError(f"unknown ASR backend {backend!r} (choose from {', '.join(BACKENDS)})")
    return BACKENDS[backend](language=language, **opts)


def wer_of(transcriber: Transcriber, wave: np.ndarray, reference: str, sample_rate: int = ASR_RATE) -> float:
    """Word error rate of what ``transcriber`` hears in ``wave`` against ``reference`` (normalized text).

    The language is the transcriber's own (``transcriber.language``).
    """
    return wer([reference], [transcriber.transcribe(wave, sample_rate)])


# --- transcript cache -----------------------------------------------------------------------

@dataclass(frozen=True)
class TranscriptKey:
    """What a transcript depends on: the 16 kHz audio, the backend, its model and the language."""

    audio_sha256: str
    backend: str
    model: str
    language: str


def transcript_key(wave: np.ndarray, transcriber: Transcriber) -> TranscriptKey:
    """The cache key of float32 ``wave`` at :data:`ASR_RATE` for ``transcriber``."""
    digest = hashlib.sha256(np.ascontiguousarray(wave, dtype="<f4").tobytes()).hexdigest()
    return TranscriptKey(digest, transcriber.name, transcriber.identity, transcriber.language)


class TranscriptCache:
    """Transcripts in an append-only JSON-lines file; damaged lines are skipped, not fatal."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._entries: dict[TranscriptKey, str] = {}
        self._lock = threading.Lock()
        self._needs_newline = False  # a torn last line from a crash must not swallow the next record
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        self._needs_newline = bool(text) and not text.endswith("\n")
        for n, line in enumerate(text.splitlines(), 1):
            try:
                record = json.loads(line)
                self._entries[TranscriptKey(**record["key"])] = record["text"]
            except (ValueError, KeyError, TypeError):
                log.warning("%s:%d: skipping a damaged transcript cache line", self.path, n)

    def get(self, key: TranscriptKey) -> str | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: TranscriptKey, text: str) -> None:
        line = json.dumps({"key": asdict(key), "text": text}, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(("\n" if self._needs_newline else "") + line)
            self._needs_newline = False
            self._entries[key] = text

    def __len__(self) -> int:
        return len(self._entries)


class CachedTranscriber(Transcriber):
    """``inner`` behind a :class:`TranscriptCache`: the same audio is recognized once."""

    def __init__(self, inner: Transcriber, cache: TranscriptCache):
        self.inner = inner
        self.cache = cache
        self.name, self.language, self.identity = inner.name, inner.language, inner.identity

    def _recognize(self, wave: np.ndarray) -> str:
        key = transcript_key(wave, self.inner)
        text = self.cache.get(key)
        if text is None:
            text = self.inner.transcribe(wave, ASR_RATE)
            self.cache.put(key, text)
        return text


# --- helpers --------------------------------------------------------------------------------

def _audio_data(wave: np.ndarray) -> sr.AudioData:
    """16-bit little-endian PCM at :data:`ASR_RATE`, as SpeechRecognition wants it."""
    pcm = np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2")
    return sr.AudioData(pcm.tobytes(), ASR_RATE, 2)
