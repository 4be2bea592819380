"""eGeMAPSv02 functionals (88 per clip, openSMILE) -> standardize -> linear classifier.

Shipped as ``egemaps-svm`` (EmoDB) and ``ravdess-egemaps`` (RAVDESS).

The classifier is a class-balanced multinomial logistic regression (a linear max-margin-like
model with calibrated probabilities), stored as plain arrays; inference is numpy. Each clip is
standardized with the training set's statistics only: no per-speaker normalization, since a
real recognizer hears one clip of an unknown user.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .probe import ProbeJudge, load_probe_judge, train_probe_judge

FAMILY = "eGeMAPSv02 functionals (88, openSMILE) -> standardize -> linear logistic classifier"
SAMPLE_RATE = 16_000


@functools.lru_cache(maxsize=1)
def _smile():
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


def _feature_id() -> str:
    import opensmile

    return f"egemapsv02-functionals-opensmile{opensmile.__version__}"


def extract(wave: np.ndarray) -> np.ndarray:
    """The 88 eGeMAPSv02 functionals of a 16 kHz mono clip."""
    return _smile().process_signal(wave, SAMPLE_RATE).to_numpy(dtype=np.float64)[0]


def load(path: Path, name: str, corpus: str) -> ProbeJudge:
    return load_probe_judge(path, name, FAMILY, corpus, extract)


def train(path: Path, name: str, corpus: str) -> dict:
    return train_probe_judge(path, name, FAMILY, corpus, _feature_id(), extract)
