"""The words guard: keep what speech-to-text hears while a stage changes the audio.

The user's words are what Whisper base hears in the clean recording (beam 5 in CTranslate2, the
same bundled model the evaluator scores WER with through faster-whisper). A stage that changes the audio asks the
guard for the cross-entropy of those tokens on its output (Whisper in torch, teacher-forced,
:mod:`cloak.whisper_torch`); descending it keeps the words where they are, and can bring back
words an earlier stage had blurred. Whisper is then a crafting model: the Whisper-encoder
judges no longer judge a mode that uses the guard (the bench says so).
"""
from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cloak.whisper_torch import HOP, MAX_SECONDS, SAMPLE_RATE, load_whisper_torch

MIN_PAD_S = 2.5  # the decoder was trained on 30 s windows; a second of silence after the piece keeps its
TAIL_S = 1.0  # reading (cross-entropy on a 2 s clip: 4.6 unpadded, 0.27 in 4 s, 0.15 in 30 s) at a fraction of the cost
MAX_TOKENS = 224  # Whisper's decoder reads at most 448 positions; half is its own cap for a window
WINDOW_MIN_S = 8.0  # the transcript's window: the piece and WINDOW_TAIL_S of silence, at least 8 s; a quarter
WINDOW_TAIL_S = 2.0  # of a 30 s window's cost on a short clip, and the same words once the repeat is cut
TOKENS_PER_S = 12  # the transcript's cap per second of the piece and CAP_TAIL_S (speech gives up to 8), so a
CAP_TAIL_S = 1.0  # repeat stops early


@dataclass(frozen=True)
class GuardSettings(ABC):
    """The words guard's settings, shared by the stages that craft with it.

    ``words``: the guard's weight against the surrogate (0: off); its gradient is taken afresh every
    ``words_every`` steps, for speech in ``language`` (None: detected). Taken once, at the start of
    10 steps, it keeps EmoDB's German words as well as every 5 steps but RAVDESS's English ones less
    well; the thorough mode takes it once all the same, for one Whisper pass a piece instead of two
    (README: the thorough mode). A stage sets :attr:`crafts`.
    """

    words: float = 0.0
    words_every: int = 5
    language: str | None = None

    def __post_init__(self) -> None:
        if self.words < 0 or self.words_every < 1:
            raise ValueError(f"need words >= 0 and words_every >= 1, got {self.words}, {self.words_every}")

    @property
    @abstractmethod
    def crafts(self) -> bool:
        """Whether the stage crafts anything for the guard to steer."""

    @property
    def guarded(self) -> bool:
        """Whether the words guard crafts (Whisper then helps craft)."""
        return self.words > 0 and self.crafts


@dataclass(frozen=True)
class Transcript:
    """Whisper's start-of-transcript prompt (with its language), the text tokens that follow, ending
    with end-of-text, the text itself and its language code."""

    prompt: tuple[int, ...]
    tokens: tuple[int, ...]
    text: str
    language: str = ""


@dataclass(frozen=True)
class Encoded:
    """A gradient pass of the words guard, begun: the audio (a leaf that requires grad) and Whisper's
    encoder states of it, with their graph."""

    wave: torch.Tensor
    states: torch.Tensor


class WordsGuard:
    """``transcript(clean) -> Transcript``; ``loss(changed, transcript) -> cross-entropy``;
    ``gradient(encode(changed), transcript)``: its gradient, the encoder's half taken before the words are known.

    The gradient passes are large matrix products, so they run on ``threads`` CPU threads (default:
    every core the process may use) whatever the rest of the cloak uses: wrap a pass through
    :meth:`loss` and its backward in :meth:`working`. The transcript takes one thread, as the
    evaluator's does (int8 decoding follows the thread count), and :class:`cloak.chain.Chain` runs it
    beside the neutralizer.

    >>> guard = WordsGuard()
    >>> words = guard.transcript(clean16)
    >>> with guard.working():
    ...     guard.loss(torch.from_numpy(changed16), words).backward()
    """

    def __init__(self, language: str | None = None, device: str | torch.device = "cpu", threads: int | None = None) -> None:
        self.language = language
        self.device = torch.device(device)
        self.threads = threads or len(os.sched_getaffinity(0))
        self.model = load_whisper_torch().to(self.device)

    @contextmanager
    def working(self, threads: int | None = None) -> Iterator[None]:
        """Torch runs on the guard's threads inside (or on ``threads``), on its own count again after."""
        before = torch.get_num_threads()
        torch.set_num_threads(threads or self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def transcript(self, wave16: np.ndarray) -> Transcript:
        """What Whisper base hears in ``wave16`` (:func:`transcribe`, in the guard's language or detected)."""
        return transcribe(wave16, self.language)

    def loss(self, wave16: torch.Tensor, words: Transcript, states: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy of ``words``' tokens given ``wave16`` ``(samples,)``, teacher-forced; ``states``:
        :meth:`states` of ``wave16`` when taken already (the words are not needed for them)."""
        if states is None:
            states = self.states(wave16)
        seq = torch.tensor([words.prompt + words.tokens], device=self.device)
        logits = self.model.logits(seq[:, :-1], states)
        start = len(words.prompt) - 1  # the first prediction of a text token
        return F.cross_entropy(logits[0, start:], seq[0, start + 1:])

    def states(self, wave16: torch.Tensor) -> torch.Tensor:
        """Whisper's encoder states ``(1, frames, 512)`` of ``wave16`` ``(samples,)``, padded with at least
        1 s of silence, to 2.5 s or more."""
        n = _check_length(wave16.shape[-1])
        padded = min(round(MAX_SECONDS * SAMPLE_RATE), max(round(MIN_PAD_S * SAMPLE_RATE), n + round(TAIL_S * SAMPLE_RATE)))
        mel = self.model.log_mel(F.pad(wave16, (0, padded - n))[None])[..., : padded // HOP]
        return self.model.encode(mel)

    def encode(self, wave16: torch.Tensor, threads: int | None = None) -> Encoded:
        """Begin a gradient pass at ``wave16`` ``(samples,)`` before its words are known: the encoder's half,
        on the guard's threads (or on ``threads``: the same numbers); :meth:`gradient` finishes it."""
        x = wave16.detach().requires_grad_(True)
        with torch.enable_grad(), self.working(threads):
            return Encoded(x, self.states(x))

    def gradient(self, encoded: Encoded, words: Transcript) -> torch.Tensor:
        """The gradient of :meth:`loss` with respect to the audio :meth:`encode` began with (its shape)."""
        with torch.enable_grad(), self.working():
            (grad,) = torch.autograd.grad(self.loss(encoded.wave, words, encoded.states), encoded.wave)
        return grad


def transcribe(wave16: np.ndarray, language: str | None = None) -> Transcript:
    """What Whisper base hears in ``wave16`` (16 kHz mono, at most 30 s): beam 5, in ``language`` (None: detected).

    The window is the piece and 2 s of silence, at least 8 s (not Whisper's 30 s, which costs four
    times as much on a short clip). In a short window the decoder tends to say the words again as if
    the silence held them; :func:`cut_repeat` keeps the first saying. One encoding serves both the
    language detection and the decoding."""
    import ctranslate2
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    from cloak.whisper_bundle import WHISPER_BEAM_SIZE, load_whisper

    n = _check_length(len(wave16))
    window_s = min(MAX_SECONDS, max(WINDOW_MIN_S, n / SAMPLE_RATE + WINDOW_TAIL_S))
    asr = load_whisper()  # one thread, as the evaluator's: int8 decoding follows the thread count
    features = asr.feature_extractor(np.ascontiguousarray(wave16, dtype=np.float32))
    features = pad_or_trim(features, 2 * round(window_s * SAMPLE_RATE / HOP / 2))
    states = asr.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])))
    language = language or asr.model.detect_language(states)[0][0][0][2:-2]
    tokenizer = Tokenizer(asr.hf_tokenizer, True, task="transcribe", language=language)
    prompt = tuple(tokenizer.sot_sequence) + (tokenizer.no_timestamps,)
    cap = min(MAX_TOKENS, round(TOKENS_PER_S * (n / SAMPLE_RATE + CAP_TAIL_S)))
    result = asr.model.generate(states, [list(prompt)], beam_size=WHISPER_BEAM_SIZE, suppress_blank=True,
                                suppress_tokens=[-1], max_length=cap)
    tokens = cut_repeat([t for t in result[0].sequences_ids[0] if t < tokenizer.eot], tokenizer.decode)
    return Transcript(prompt, tuple(tokens) + (tokenizer.eot,), tokenizer.decode(tokens).strip(), language)


def cut_repeat(tokens: list[int], decode: Callable[[list[int]], str]) -> list[int]:
    """``tokens`` up to where the text starts over: the first word boundary from which all the rest, at
    least 3 words (case and punctuation aside), repeats the text's beginning. Speech that comes back
    to its first words and goes on elsewhere is kept whole."""
    def said(toks: list[int]) -> list[str]:
        return [re.sub(r"[^\w']", "", w.lower()) for w in decode(toks).split()]

    whole = said(tokens)
    for p in range(1, len(tokens)):
        if decode(tokens[p:p + 1]).startswith(" "):
            rest = said(tokens[p:])
            if len(rest) >= 3 and rest == whole[:len(rest)]:
                return tokens[:p]
    return tokens


def _check_length(n: int) -> int:
    """``n`` samples, or ValueError if Whisper cannot read them at once."""
    if n > MAX_SECONDS * SAMPLE_RATE:
        raise ValueError(f"the words guard reads at most {MAX_SECONDS:g} s at once, got {n / SAMPLE_RATE:.1f} s")
    return n
