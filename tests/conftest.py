"""Shared fixtures: the EmoDB folder (skipped with the reason when absent) and small real clips."""
from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import soundfile as sf

from cloak.emodb import find_emodb, load_emodb, split


def require_corpus(root: Path | None, name: str) -> Path:
    """``root``, or a skip naming how to provide the corpus; under CI (``$CI`` set) a missing corpus fails."""
    if root is None:
        why = f"{name} not found: set $CLOAK_{name.upper()} or place it under ../shared/data/{name.lower()}"
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI provides ../shared: a missing corpus there is a broken checkout, not a skip)")
        pytest.skip(why)
    return root


@pytest.fixture(scope="session")
def emodb_root():
    return require_corpus(find_emodb(), "EmoDB")


@pytest.fixture(scope="session")
def emodb(emodb_root):
    return load_emodb(emodb_root)


@pytest.fixture(scope="session")
def held_out(emodb):
    return split(emodb)[1]


@pytest.fixture(scope="session")
def clip(held_out):
    """A real held-out clip: (wave float32 mono 16 kHz, utterance)."""
    u = next(u for u in held_out if u.path.name == "03a01Wa.wav")
    wave, sr = sf.read(str(u.path), dtype="float32")
    assert sr == 16000
    return wave, u


@pytest.fixture(scope="session")
def recognizer():
    from cloak.model import load_recognizer

    return load_recognizer()


@pytest.fixture(scope="session")
def cloak_cmd() -> list[str]:
    """The installed ``cloak`` command of this interpreter's environment, found without ``PATH``.

    Beside ``sys.executable`` (a virtual environment's bin/, activated or not) or in the scheme's
    scripts folder; else ``python -m cloak``. Run it with a ``cwd`` outside the checkout, so the
    source folder ``cloak/`` never shadows the installed package.
    """
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        if (folder / "cloak").is_file():
            return [str(folder / "cloak")]
    return [sys.executable, "-m", "cloak"]


@pytest.fixture
def rng():
    return np.random.default_rng(0)
