"""File in, cloaked file out: streams audio in blocks so memory stays bounded for long recordings.

Pass 1 reads the file block by block into 16 kHz mono (the only full-length array kept);
the cloaker computes the perturbation there; pass 2 reads the file again, adds the
perturbation resampled to the file's rate to every channel, and writes a temp file that is
renamed over the destination only when complete.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from cloak.audio import (MIN_DURATION_S, SILENCE_PEAK, AudioError, AudioInfo, atomic_path, clip_for, info_for, load_audio,
                         probe, to_mono, write_audio)
from cloak.chain import Chain
from cloak.cloaker import Cloaker, CloakReport, Progress, energy, make_report, snr_db
from cloak.features import SAMPLE_RATE

BLOCK_S = 30  # seconds of audio per read block


def _blocks(path: Path, info: AudioInfo):
    """Float32 ``(frames, channels)`` blocks; corrupt data becomes :class:`AudioError`."""
    try:
        for block in sf.blocks(str(path), blocksize=BLOCK_S * info.samplerate, dtype="float32", always_2d=True):
            yield block
    except sf.LibsndfileError as e:
        raise AudioError(f"{path}: truncated or corrupt audio ({e})") from e


class _Stream:
    """soxr streaming resampler that is a no-op at equal rates."""

    def __init__(self, sr_in: int, sr_out: int) -> None:
        self.resampler = None if sr_in == sr_out else soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        return x if self.resampler is None else self.resampler.resample_chunk(x, last=last)


def read_model_input(path: Path, info: AudioInfo) -> np.ndarray:
    """The whole file as 16 kHz mono float32, validated like :func:`cloak.audio.check_wave`."""
    stream = _Stream(info.samplerate, SAMPLE_RATE)
    parts, frames, peak = [], 0, 0.0
    for block in _blocks(path, info):
        if not np.isfinite(block).all():
            raise AudioError(f"{path}: contains NaN or infinite samples")
        frames += len(block)
        peak = max(peak, float(np.abs(block).max(initial=0.0)))
        parts.append(stream(to_mono(block)))
    parts.append(stream(np.zeros(0, dtype=np.float32), last=True))
    if frames == 0:
        raise AudioError(f"{path}: contains no samples")
    if frames < MIN_DURATION_S * info.samplerate:
        raise AudioError(f"{path}: too short ({frames / info.samplerate:.3f} s; at least {MIN_DURATION_S} s needed)")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{path}: the recording is silent (peak below -80 dBFS), nothing to cloak")
    return np.concatenate(parts)


def cloak_file(cloaker: Cloaker | Chain, src: str | os.PathLike, dest: str | os.PathLike, overwrite: bool = False,
               progress: Progress | None = None) -> CloakReport:
    """Cloak ``src`` into ``dest`` (same rate and channels; the container ``dest``'s extension names).

    A perturbation-only cloak (a :class:`Cloaker`, or the ``subtle`` mode) also keeps the length
    and streams the file; a mode that neutralizes re-synthesizes the voice from the whole file.
    """
    src, dest = Path(src), Path(dest)
    if dest.exists() and dest.resolve() == src.resolve():
        raise AudioError(f"{src}: refusing to overwrite the input")
    if dest.exists() and not overwrite:
        raise AudioError(f"{dest}: exists (use --overwrite to replace it)")
    if isinstance(cloaker, Chain):
        if cloaker.neutralizer is not None:
            return _chain_file(cloaker, src, dest, overwrite, progress)
        report = cloak_file(cloaker.cloaker, src, dest, overwrite, progress)
        report.mode = cloaker.mode.name
        return report
    info = probe(src)
    mono16 = read_model_input(src, info)
    delta16, before, after = cloaker.perturbation(mono16, progress)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(dest)
    try:
        p_sig, p_noise = _write(src, info, info_for(dest, info), delta16, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    snr = np.inf if p_noise == 0 else 10 * np.log10(max(p_sig, 1e-30) / p_noise)
    return make_report(info.duration, cloaker.config.steps, float(snr), before, after)


def _chain_file(chain: Chain, src: Path, dest: Path, overwrite: bool, progress: Progress | None) -> CloakReport:
    data, info = load_audio(src)
    out, report = chain.cloak(data, info.samplerate, progress)
    write_audio(dest, out, info_for(dest, info), overwrite=overwrite)
    return report


def _write(src: Path, info: AudioInfo, out_info: AudioInfo, delta16: np.ndarray, tmp: Path) -> tuple[float, float]:
    """Pass 2: add the upsampled perturbation block by block, written as ``out_info``; returns (signal, noise) energy."""
    stream = _Stream(SAMPLE_RATE, info.samplerate)
    pending = np.zeros(0, dtype=np.float32)
    fed, p_sig, p_noise = 0, 0.0, 0.0
    with sf.SoundFile(str(tmp), "w", samplerate=info.samplerate, channels=info.channels,
                      format=out_info.format, subtype=out_info.subtype) as out:
        for block in _blocks(src, info):
            need = len(block)
            while len(pending) < need and fed < len(delta16):
                step = BLOCK_S * SAMPLE_RATE
                chunk = delta16[fed:fed + step]
                fed += len(chunk)
                pending = np.concatenate([pending, stream(chunk, last=fed >= len(delta16))])
            d = pending[:need]
            if len(d) < need:
                d = np.concatenate([d, np.zeros(need - len(d), dtype=np.float32)])
            pending = pending[need:]
            cloaked = clip_for(out_info.subtype, block + d[:, None])
            out.write(cloaked)
            p_sig += energy(block)
            p_noise += energy(cloaked - block)
    return p_sig, p_noise


__all__ = ["cloak_file", "read_model_input", "snr_db"]
