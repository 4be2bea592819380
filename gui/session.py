"""The app's pure steps, testable without a window: settings -> mode, sources, save paths.

A :class:`Source` is what the user is working on: a loaded file or a microphone recording,
as float32 ``(frames, channels)`` plus the :class:`~cloak.audio.AudioInfo` to write it back with.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cloak.audio import AudioError, AudioInfo, check_wave, info_for, load_audio, write_audio
from cloak.bandgain import BandGainConfig
from cloak.chain import MODES, Mode
from cloak.cloaker import STRENGTHS, CloakConfig

RECORDING_NAME = "recording"
BAND_GAIN_DB = BandGainConfig().max_gain_db  # the GUI's "Moving equalizer" switch


@dataclass(frozen=True)
class Source:
    """Audio to cloak: ``data`` ``(frames, channels)`` float32, how to write it, where it came from."""

    data: np.ndarray
    info: AudioInfo
    path: Path | None = None  # None for a recording

    @property
    def name(self) -> str:
        return self.path.name if self.path else f"{RECORDING_NAME} ({self.info.duration:.1f} s)"

    def describe(self) -> str:
        ch = {1: "mono", 2: "stereo"}.get(self.info.channels, f"{self.info.channels} ch")
        return f"{self.info.duration:.2f} s, {self.info.samplerate} Hz {ch}, {self.info.format} {self.info.subtype}"


def load_source(path: str | os.PathLike) -> Source:
    """Read a file; raises :class:`AudioError` for unsupported, corrupt or silent files."""
    data, info = load_audio(path)
    return Source(data, info, Path(path))


def source_from_recording(samples: np.ndarray, samplerate: int) -> Source:
    """A mono recording, to be saved as 16-bit WAV; raises :class:`AudioError` if unusable."""
    data = np.asarray(samples, dtype=np.float32).reshape(-1, 1)
    check_wave(data, samplerate, name="the recording")
    return Source(data, AudioInfo(samplerate, 1, data.shape[0], "WAV", "PCM_16"))


def make_config(strength: str, *, steps: int | None = None, epsilon: float | None = None,
                min_snr_db: float | None = None) -> CloakConfig:
    """A preset with the advanced overrides applied (``None`` keeps the preset's value).

    Raises ``ValueError`` with a readable message for an unknown preset or bad values.
    """
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; choose one of {', '.join(STRENGTHS)}")
    changes = {k: v for k, v in (("steps", steps), ("epsilon", epsilon), ("min_snr_db", min_snr_db)) if v is not None}
    if changes.get("steps", 1) < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return replace(STRENGTHS[strength], **changes)


def make_mode(name: str, *, calm: float | None = None, attack: CloakConfig | None = None,
              flatten_loudness: bool = False, band_gain: float | None = None) -> Mode:
    """Mode ``name`` with the neutralizer's ``calm`` (0..1), loudness switch and band-gain stage
    (``band_gain`` dB, :mod:`cloak.bandgain`), or the subtle attack's settings.

    ``calm``, ``flatten_loudness`` and ``band_gain`` apply to modes with a neutralizer, ``attack`` to
    modes with an attack stage; ``None`` keeps the preset's value. Raises ``ValueError`` with a readable message.
    """
    if name not in MODES:
        raise ValueError(f"unknown mode {name!r}; choose one of {', '.join(MODES)}")
    mode = MODES[name]
    if calm is not None and mode.neutralize is not None:
        mode = mode.with_strength(calm)
    if flatten_loudness and mode.neutralize is not None:
        mode = mode.flatten_loudness()
    if band_gain is not None and mode.neutralize is not None:
        mode = replace(mode, bands=BandGainConfig(max_gain_db=band_gain))
    if attack is not None and mode.attack is not None:  # the preset's words guard stays
        mode = replace(mode, attack=replace(attack, words=mode.attack.words, words_every=mode.attack.words_every,
                                            language=mode.attack.language))
    return mode


def default_save_path(source: Source, folder: str | os.PathLike | None = None) -> Path:
    """``NAME.cloaked.EXT`` beside the input (or in ``folder``; ``recording.cloaked.wav`` for recordings)."""
    if source.path is None:
        return Path(folder or Path.home()) / f"{RECORDING_NAME}.cloaked.wav"
    return (Path(folder) if folder else source.path.parent) / f"{source.path.stem}.cloaked{source.path.suffix}"


def check_save_path(dest: str | os.PathLike, source: Source) -> Path:
    """Refuse to write over the input file; returns ``dest`` as a ``Path``."""
    dest = Path(dest)
    if source.path is not None and dest.resolve() == source.path.resolve():
        raise AudioError(f"{dest.name}: refusing to overwrite the input file; choose another name")
    if dest.is_dir():
        raise AudioError(f"{dest}: is a folder")
    return dest


def save_cloaked(dest: str | os.PathLike, cloaked: np.ndarray, source: Source, overwrite: bool = False) -> Path:
    """Write ``cloaked`` like the input (format/subtype/rate); never over the input itself."""
    dest = check_save_path(dest, source)
    try:
        return write_audio(dest, cloaked, info_for(dest, source.info), overwrite=overwrite)
    except AudioError:
        raise
    except Exception as e:  # soundfile / OS errors: unwritable folder, disk full, bad format
        raise AudioError(f"{dest}: cannot write ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
