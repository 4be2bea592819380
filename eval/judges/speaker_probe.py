"""A GE2E speaker-verification embedding (resemblyzer, 256-d) -> logistic probe.

Shipped as ``speaker-probe`` (EmoDB) and ``ravdess-speaker-probe`` (RAVDESS).

The encoder was trained to tell speakers apart, never on emotion; the probe reads what of the
emotion its embedding still carries. resemblyzer's own preprocessing (voice-activity trimming,
level normalization) runs first.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np

from .probe import ProbeJudge, load_probe_judge, train_probe_judge

FAMILY = "resemblyzer GE2E speaker embedding (3-layer LSTM on 40-band mel, 256-d) -> logistic probe"
SAMPLE_RATE = 16_000


@functools.lru_cache(maxsize=1)
def _encoder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def _feature_id() -> str:
    from importlib.metadata import version

    return f"resemblyzer{version('resemblyzer')}-ge2e-utterance"


def extract(wave: np.ndarray) -> np.ndarray:
    """The 256-d utterance embedding of a 16 kHz mono clip."""
    with warnings.catch_warnings():  # webrtcvad imports the deprecated pkg_resources
        warnings.simplefilter("ignore", UserWarning)
        from resemblyzer import preprocess_wav

    trimmed = preprocess_wav(wave, source_sr=SAMPLE_RATE)
    if trimmed.size < SAMPLE_RATE // 10:  # VAD found (almost) no voice: embed the whole clip
        trimmed = wave
    return _encoder().embed_utterance(trimmed).astype(np.float64)


def load(path: Path, name: str, corpus: str) -> ProbeJudge:
    return load_probe_judge(path, name, FAMILY, corpus, extract)


def train(path: Path, name: str, corpus: str) -> dict:
    return train_probe_judge(path, name, FAMILY, corpus, _feature_id(), extract)
