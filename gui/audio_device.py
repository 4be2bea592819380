"""Microphone and speakers: the only module that imports ``sounddevice``, lazily.

``sounddevice`` needs the PortAudio library and a sound card; neither may exist. Every
function here raises :class:`DeviceError` (one readable line) instead of ``OSError`` /
``PortAudioError``, so the window can show a message and keep working with files.
Tests replace :func:`_sounddevice` with a fake module.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from cloak.audio import first_line

_MODULE = None
_IMPORT_ERROR: Exception | None = None  # remembered: retrying the import is slow (find_library)


class DeviceError(RuntimeError):
    """No audio device (or no PortAudio); ``str()`` is one line a user can read."""


def _sounddevice():
    """Import ``sounddevice`` on first use (raises ``OSError`` without PortAudio)."""
    global _MODULE, _IMPORT_ERROR
    if _MODULE is None:
        if _IMPORT_ERROR is not None:
            raise _IMPORT_ERROR
        try:
            import sounddevice
        except Exception as e:  # OSError: PortAudio library not found
            _IMPORT_ERROR = e
            raise
        _MODULE = sounddevice
    return _MODULE


def _module():
    try:
        return _sounddevice()
    except Exception as e:  # OSError: PortAudio library not found; ImportError
        raise DeviceError(f"no audio system ({first_line(e)})") from e


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    samplerate: int


def input_devices() -> list[InputDevice]:
    """Devices with at least one input channel, default device first."""
    sd = _module()
    try:
        devices = list(sd.query_devices())
        default = _default_index(sd, 0)
    except Exception as e:
        raise DeviceError(f"cannot list audio devices ({first_line(e)})") from e
    found = [InputDevice(i, str(d["name"]), int(d.get("default_samplerate") or 16000))
             for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]
    found.sort(key=lambda d: d.index != default)
    if not found:
        raise DeviceError("no microphone found")
    return found


def has_output() -> bool:
    """Whether some device can play sound."""
    try:
        sd = _module()
        return any(d.get("max_output_channels", 0) > 0 for d in sd.query_devices())
    except Exception:
        return False


def play(data: np.ndarray, samplerate: int) -> None:
    """Start playing ``data`` ``(frames,)`` or ``(frames, channels)``; returns at once."""
    if not has_output():
        raise DeviceError("no output device: cannot play audio")
    sd = _module()
    try:
        sd.stop()
        sd.play(np.ascontiguousarray(data, dtype=np.float32), samplerate)
    except Exception as e:
        raise DeviceError(f"playback failed ({first_line(e)})") from e


def stop() -> None:
    """Stop playback; silently does nothing without an audio system."""
    try:
        _module().stop()
    except Exception:
        pass


class Recorder:
    """Record mono float32 from an input device in the background.

    ``level`` (peak of the last block, 0..1) and ``seconds`` may be read from any thread;
    :meth:`stop` returns everything recorded as ``(frames,)``.
    """

    BLOCK = 1024

    def __init__(self, device: int | None, samplerate: int) -> None:
        self.samplerate = samplerate
        self.level = 0.0
        self._frames = 0
        self._blocks: list[np.ndarray] = []
        self._lock = threading.Lock()
        sd = _module()
        try:
            self._stream = sd.InputStream(device=device, channels=1, samplerate=samplerate, dtype="float32",
                                          blocksize=self.BLOCK, callback=self._callback)
            self._stream.start()
        except Exception as e:
            raise DeviceError(f"cannot open the microphone ({first_line(e)})") from e

    def _callback(self, indata, frames, time, status) -> None:  # PortAudio's thread
        block = np.array(indata[:, 0] if indata.ndim == 2 else indata, dtype=np.float32)
        with self._lock:
            self._blocks.append(block)
            self._frames += len(block)
        self.level = float(np.abs(block).max()) if len(block) else 0.0

    @property
    def seconds(self) -> float:
        return self._frames / self.samplerate

    def stop(self) -> np.ndarray:
        try:
            self._stream.stop()
            self._stream.close()
        except Exception:
            pass
        self.level = 0.0
        with self._lock:
            return np.concatenate(self._blocks) if self._blocks else np.zeros(0, dtype=np.float32)


def _default_index(sd, which: int) -> int:
    dev = sd.default.device
    try:
        return int(dev[which])
    except (TypeError, IndexError):
        return int(dev) if dev is not None else -1

