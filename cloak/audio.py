"""Audio I/O: read any file soundfile understands, convert to model input, write atomically.

Audio arrays are float32 with shape ``(frames, channels)`` at the file's own rate;
model input is float32 mono ``(time,)`` at :data:`cloak.features.SAMPLE_RATE`.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

MIN_DURATION_S = 0.1
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})  # sample formats that hold values beyond +-1.0
SILENCE_PEAK = 1e-4  # peak amplitude (-80 dBFS) below which a recording counts as silent


class AudioError(ValueError):
    """A file or array that cannot be cloaked; ``str()`` is one line a user can read."""


@dataclass(frozen=True)
class AudioInfo:
    """What we must preserve when writing a file back: rate, channels, container, sample format."""

    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read the header of ``path``; raise :class:`AudioError` for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises several types (LibsndfileError, RuntimeError, TypeError)
        raise AudioError(f"{path}: not a readable audio file ({first_line(e)})") from e
    if info.frames <= 0:
        raise AudioError(f"{path}: contains no samples")
    return AudioInfo(info.samplerate, info.channels, info.frames, info.format, info.subtype)


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, AudioInfo]:
    """Read a whole file as float32 ``(frames, channels)`` and check it is cloakable."""
    info = probe(path)
    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(f"{path}: truncated or corrupt audio ({first_line(e)})") from e
    check_wave(data, info.samplerate, name=str(path))
    return data, info


def check_wave(data: np.ndarray, samplerate: int, name: str = "audio") -> None:
    """Raise :class:`AudioError` for audio that cannot or need not be cloaked."""
    if data.size == 0:
        raise AudioError(f"{name}: contains no samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    if data.shape[0] < MIN_DURATION_S * samplerate:
        raise AudioError(f"{name}: too short ({data.shape[0] / samplerate:.3f} s; at least {MIN_DURATION_S} s needed)")
    if np.abs(data).max() < SILENCE_PEAK:
        raise AudioError(f"{name}: the recording is silent (peak below -80 dBFS), nothing to cloak")


def to_mono(data: np.ndarray) -> np.ndarray:
    """Downmix ``(frames, channels)`` to ``(frames,)`` by averaging channels."""
    return data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.astype(np.float32)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling along axis 0 (soxr, high quality); a no-op when rates match."""
    if sr_in == sr_out:
        return x
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def to_model_rate(data: np.ndarray, samplerate: int, target_rate: int) -> np.ndarray:
    """Any ``(frames, channels)`` audio to mono float32 at ``target_rate``."""
    return resample(to_mono(data), samplerate, target_rate)


def clip_for(subtype: str, data: np.ndarray) -> np.ndarray:
    """Clip to the range an integer subtype can hold, so it never wraps around.

    Float subtypes (:data:`FLOAT_SUBTYPES`) hold samples beyond full scale and keep them.
    """
    if subtype in FLOAT_SUBTYPES:
        return data
    top = 1.0
    if subtype.startswith("PCM_") and subtype != "PCM_U8":
        bits = int(subtype[4:])
        top = 1.0 - 2.0 ** -(bits - 1)
    elif subtype == "PCM_U8":
        top = 1.0 - 2.0 ** -7
    return np.clip(data, -1.0, top)


def _process_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()  # read once, at import: changing it later from a worker thread would race


def atomic_path(dest: Path) -> Path:
    """A temp file beside ``dest`` (same filesystem, so ``os.replace`` is atomic), with the
    permissions any new file gets (``mkstemp``'s own 0600 would make outputs private to the owner)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return Path(tmp)


def info_for(dest: str | os.PathLike, info: AudioInfo) -> AudioInfo:
    """``info`` with the container ``dest``'s extension names (``.wav``, ``.flac``...), keeping the
    subtype where that container holds it; unknown extensions keep the input's container."""
    fmt = Path(dest).suffix.lstrip(".").upper()
    if fmt not in sf.available_formats() or fmt == info.format:
        return info
    subtype = info.subtype if sf.check_format(fmt, info.subtype) else sf.default_subtype(fmt)
    return replace(info, format=fmt, subtype=subtype)


def write_audio(dest: str | os.PathLike, data: np.ndarray, info: AudioInfo, overwrite: bool = False) -> Path:
    """Write ``data`` with ``info``'s rate, container and subtype via temp file + rename."""
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise AudioError(f"{dest}: exists (use --overwrite to replace it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(dest)
    try:
        sf.write(str(tmp), clip_for(info.subtype, data), info.samplerate, subtype=info.subtype, format=info.format)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def first_line(e: BaseException) -> str:
    """An exception's message in one line (its type when it has none): for one-line errors."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
