"""openSMILE functionals -> standardize -> linear classifier: the classical recognizer family.

Two feature sets, each its own judge family:

- eGeMAPSv02 (88 functionals of pitch, loudness, voice quality, formants, spectral balance and
  timing): ``egemaps-svm`` (EmoDB) and ``ravdess-egemaps`` (RAVDESS);
- ComParE 2016 (6373 functionals, mostly of spectral, MFCC and RASTA bands: the INTERSPEECH
  challenge baseline, many times eGeMAPS' spectral detail): ``compare-svm`` (EmoDB) and
  ``ravdess-compare`` (RAVDESS).

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

SAMPLE_RATE = 16_000
# openSMILE feature set -> (name shown, functionals per clip); each judge's feature set
SETS = {"eGeMAPSv02": ("eGeMAPSv02", 88), "ComParE_2016": ("ComParE 2016", 6373)}
JUDGE_SETS = {"egemaps-svm": "eGeMAPSv02", "ravdess-egemaps": "eGeMAPSv02",
              "compare-svm": "ComParE_2016", "ravdess-compare": "ComParE_2016"}


def family(feature_set: str) -> str:
    """The family line of a judge on ``feature_set``."""
    shown, n = SETS[feature_set]
    return f"{shown} functionals ({n}, openSMILE) -> standardize -> linear logistic classifier"


@functools.lru_cache(maxsize=2)
def _smile(feature_set: str):
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet[feature_set],
                           feature_level=opensmile.FeatureLevel.Functionals)


def feature_id(feature_set: str) -> str:
    """The feature cache's name for ``feature_set``'s functionals (changes with openSMILE's version)."""
    import opensmile

    return f"{feature_set.lower()}-functionals-opensmile{opensmile.__version__}"


def extractor(feature_set: str):
    """``wave -> functionals`` of a 16 kHz mono clip for the openSMILE ``feature_set``."""
    def extract(wave: np.ndarray) -> np.ndarray:
        return _smile(feature_set).process_signal(wave, SAMPLE_RATE).to_numpy(dtype=np.float64)[0]
    return extract


def load(path: Path, name: str, corpus: str) -> ProbeJudge:
    feature_set = JUDGE_SETS[name]
    return load_probe_judge(path, name, family(feature_set), corpus, extractor(feature_set))


def train(path: Path, name: str, corpus: str) -> dict:
    feature_set = JUDGE_SETS[name]
    return train_probe_judge(path, name, family(feature_set), corpus, feature_id(feature_set), extractor(feature_set))
