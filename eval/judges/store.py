"""Judge checkpoints: where they live, how they are written and verified, and a feature cache.

Every checkpoint sits in ``cloak.models/judges/`` beside a ``NAME.sha256`` sidecar that is
checked on every load. Checkpoints hold weights only: ``.npz`` read with
``allow_pickle=False`` or ``.pt`` read with ``torch.load(weights_only=True)``; metadata is a
JSON string inside the file.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from cloak.audio import atomic_path
from cloak.model import sha256_file

CACHE_ENV_VAR = "CLOAK_CACHE"  # replaces ~/.cache/cloak, as for the ASR cache


class JudgeError(ValueError):
    """A judge that is unknown, missing, corrupt or given bad input; ``str()`` is one line."""


def judges_dir() -> Path:
    """The folder of shipped judge checkpoints inside the installed ``cloak.models`` package."""
    return Path(str(resources.files("cloak.models"))) / "judges"


def verify_checkpoint(path: Path) -> None:
    """Raise :class:`JudgeError` unless ``path`` exists and matches its ``.sha256`` sidecar."""
    sidecar = path.with_name(path.name + ".sha256")
    if not path.is_file():
        raise JudgeError(f"{path}: judge checkpoint not found (train it with: python -m cloak.eval.judges train)")
    if not sidecar.is_file():
        raise JudgeError(f"{path}: no {sidecar.name} beside it; refusing an unverified checkpoint")
    if sha256_file(path) != sidecar.read_text().split()[0]:
        raise JudgeError(f"{path}: checksum mismatch (file corrupt or replaced)")


def _finish(tmp: Path, path: Path) -> str:
    os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are shipped package data
    os.replace(tmp, path)
    digest = sha256_file(path)
    side = path.with_name(path.name + ".sha256")
    side_tmp = atomic_path(side)
    side_tmp.write_text(f"{digest}  {path.name}\n")
    os.chmod(side_tmp, 0o644)
    os.replace(side_tmp, side)
    return digest


def save_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> str:
    """Write plain arrays + JSON ``meta`` atomically and its sidecar; returns the SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        return _finish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_npz(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Verified arrays and metadata from :func:`save_npz` (no pickles)."""
    verify_checkpoint(path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(str(z["meta"]))
    return arrays, meta


def save_torch(path: Path, state_dict: dict, meta: dict) -> str:
    """Write a state dict + JSON ``meta`` atomically and its sidecar; returns the SHA-256."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        torch.save({"state_dict": state_dict, "meta": json.dumps(meta, sort_keys=True)}, tmp)
        return _finish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_torch(path: Path) -> tuple[dict, dict]:
    """Verified state dict and metadata from :func:`save_torch` (``weights_only=True``)."""
    import torch

    verify_checkpoint(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return payload["state_dict"], json.loads(payload["meta"])


def cache_root() -> Path:
    """``$CLOAK_CACHE`` or ``~/.cache/cloak``."""
    root = os.environ.get(CACHE_ENV_VAR)
    return Path(root) if root else Path.home() / ".cache" / "cloak"


def wave_key(wave: np.ndarray) -> str:
    """SHA-256 of the float32 samples: the cache key of one clip's content."""
    return hashlib.sha256(np.ascontiguousarray(wave, dtype="<f4").tobytes()).hexdigest()


def cached_features(feature_id: str, waves: Sequence[np.ndarray],
                    extract: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``extract(wave)`` for each clip, stacked; results persist in one ``.npz`` per ``feature_id``.

    ``feature_id`` must change whenever ``extract`` would give different numbers.
    """
    path = cache_root() / "judges" / f"{feature_id}.npz"
    store: dict[str, np.ndarray] = {}
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                store = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            store = {}  # a damaged cache is rebuilt, never fatal
    keys = [wave_key(w) for w in waves]
    missing = [(k, w) for k, w in zip(keys, waves) if k not in store]
    for k, w in missing:
        store[k] = np.asarray(extract(w), dtype=np.float32)
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = atomic_path(path)
        with open(tmp, "wb") as f:
            np.savez(f, **store)
        os.replace(tmp, path)
    return np.stack([store[k] for k in keys])
