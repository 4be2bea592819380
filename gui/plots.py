"""Waveforms and spectrograms of the original and cloaked audio, drawn with QPainter.

Drawing must not stall the event loop (the app's target is <= 100 ms), so the numbers are
prepared once per clip with numpy (:func:`envelope`, :func:`spectrogram_db`,
:func:`spectrogram_image`) and ``paintEvent`` only draws at most one line per pixel
column and one scaled image.
"""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QSizePolicy, QWidget

from cloak.audio import to_model_rate
from cloak.features import HOP_LENGTH, N_FFT, SAMPLE_RATE, WIN_LENGTH

WAVE_POINTS = 2000  # envelope columns kept per clip: more than the widget has pixels
DB_RANGE = 80.0  # spectrogram colour range below the original's peak
ORIGINAL_COLOR = QColor("#3b6ea8")
CLOAKED_COLOR = QColor("#d07a2c")
DELTA_COLOR = QColor("#b3261e")
DELTA_GAIN = 10.0  # the perturbation is drawn magnified, or it would be invisible at 30-40 dB SNR
_LUT = (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)  # (256, 3) RGB


def envelope(x: np.ndarray, points: int = WAVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: per-column min and max of mono ``x`` over ``min(points, len(x))`` equal columns."""
    cols = max(1, min(points, len(x)))
    starts = np.linspace(0, len(x), cols + 1).astype(int)[:-1]
    return np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts)


def spectrogram_db(mono16: np.ndarray) -> np.ndarray:
    """Power spectrogram in dB ``(N_FFT // 2 + 1, frames)`` of 16 kHz mono audio (Hann window)."""
    x = np.pad(np.asarray(mono16, np.float32), (WIN_LENGTH // 2, WIN_LENGTH // 2))
    n_frames = max(1, 1 + (len(x) - WIN_LENGTH) // HOP_LENGTH)
    idx = np.arange(WIN_LENGTH)[None, :] + HOP_LENGTH * np.arange(n_frames)[:, None]
    frames = x[np.minimum(idx, len(x) - 1)] * np.hanning(WIN_LENGTH).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, n=N_FFT, axis=1)) ** 2
    return (10.0 * np.log10(power + 1e-10)).T.astype(np.float32)


def spectrogram_image(spec_db: np.ndarray, vmax: float) -> QImage:
    """``(freqs, frames)`` dB -> RGB ``QImage`` (low frequencies at the bottom), magma colours."""
    level = np.clip((spec_db - (vmax - DB_RANGE)) / DB_RANGE, 0.0, 1.0)
    rgb = np.ascontiguousarray(_LUT[(level[::-1] * 255).astype(np.uint8)])  # (freqs, frames, 3)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()  # copy: own the pixels


def nice_step(span: float, max_ticks: int) -> float:
    """A 1/2/5 x 10^k tick spacing giving at most ``max_ticks`` ticks over ``span``."""
    raw = span / max(1, max_ticks)
    mag = 10 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    return float(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))


class _Panel(QWidget):
    """Common frame: title, plot rectangle with margins, time axis ticks."""

    LEFT, RIGHT, TOP, BOTTOM = 44, 8, 20, 22

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.duration = 0.0  # seconds of audio shown
        self.span = 0.0  # seconds the time axis covers (>= duration: original and cloaked share a scale)
        self.hint = ""
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(200, 120)

    def plot_rect(self) -> QRectF:
        return QRectF(self.LEFT, self.TOP, self.width() - self.LEFT - self.RIGHT,
                      self.height() - self.TOP - self.BOTTOM)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("white"))
        r = self.plot_rect()
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        p.setPen(QColor("#222"))
        p.drawText(QRectF(r.left(), 0, r.width(), self.TOP), Qt.AlignCenter, self.title)
        font.setBold(False)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        if self.duration <= 0:
            p.setPen(QColor("#999"))
            p.drawRect(r)
            p.drawText(r, Qt.AlignCenter, self.hint)
            p.end()
            return
        span = max(self.span, self.duration)
        self.draw_data(p, QRectF(r.left(), r.top(), r.width() * self.duration / span, r.height()))
        p.setPen(QColor("#555"))
        p.setBrush(Qt.NoBrush)
        p.drawRect(r)
        step = nice_step(span, max(2, int(r.width() // 70)))
        t = 0.0
        while t <= span + 1e-9:
            x = r.left() + r.width() * t / span
            p.drawLine(QPointF(x, r.bottom()), QPointF(x, r.bottom() + 4))
            p.drawText(QRectF(x - 30, r.bottom() + 4, 60, self.BOTTOM - 4), Qt.AlignHCenter | Qt.AlignTop, f"{t:g}")
            t += step
        p.drawText(QRectF(r.right() - 40, r.bottom() + 4, 40 + self.RIGHT, self.BOTTOM - 4),
                   Qt.AlignRight | Qt.AlignTop, "s")
        self.draw_y_axis(p, r)
        p.end()

    def draw_data(self, p: QPainter, r: QRectF) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def draw_y_axis(self, p: QPainter, r: QRectF) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class WaveformView(_Panel):
    """Min/max envelope of a waveform, optionally with a second envelope (the perturbation) on top."""

    def __init__(self, title: str, color: QColor, parent=None) -> None:
        super().__init__(title, parent)
        self.color = color
        self.env: tuple[np.ndarray, np.ndarray] | None = None
        self.overlay: tuple[np.ndarray, np.ndarray] | None = None
        self.peak = 1.0

    def set_wave(self, mono: np.ndarray | None, samplerate: int = 1, peak: float = 1.0,
                 overlay: np.ndarray | None = None, hint: str = "", span: float = 0.0) -> None:
        self.hint = hint
        self.env = envelope(mono) if mono is not None else None
        self.overlay = envelope(np.clip(DELTA_GAIN * overlay, -peak, peak)) if overlay is not None else None
        self.duration = len(mono) / samplerate if mono is not None else 0.0
        self.span = span
        self.peak = max(peak, 1e-4)
        self.update()

    def _lines(self, env, r: QRectF) -> list:
        lo, hi = env
        cols = max(1, int(r.width()))
        idx = np.linspace(0, len(lo), cols + 1).astype(int)
        idx[-1] = len(lo)
        keep = idx[1:] > idx[:-1]
        lo_c = np.minimum.reduceat(lo, idx[:-1][keep]) if len(lo) else lo
        hi_c = np.maximum.reduceat(hi, idx[:-1][keep]) if len(hi) else hi
        xs = r.left() + np.arange(cols)[keep] + 0.5
        mid, half = r.center().y(), r.height() / 2 / (1.05 * self.peak)
        y0, y1 = mid - hi_c * half, mid - lo_c * half
        y1 = np.maximum(y1, y0 + 1)  # at least one pixel, so silence shows as a line
        return [QPointF(x, a) for x, a in zip(xs, y0)], [QPointF(x, b) for x, b in zip(xs, y1)]

    def draw_data(self, p: QPainter, r: QRectF) -> None:
        for env, color in ((self.env, self.color), (self.overlay, DELTA_COLOR)):
            if env is None:
                continue
            tops, bottoms = self._lines(env, r)
            p.setPen(QPen(color, 1))
            for a, b in zip(tops, bottoms):
                p.drawLine(a, b)
        if self.overlay is not None:
            label = f"perturbation ×{DELTA_GAIN:g}"
            width = p.fontMetrics().horizontalAdvance(label)
            p.fillRect(QRectF(r.right() - width - 16, 5, 10, 10), DELTA_COLOR)
            p.setPen(QColor("#333"))
            p.drawText(QRectF(r.right() - width - 2, 0, width + 2, self.TOP), Qt.AlignRight | Qt.AlignVCenter, label)

    def draw_y_axis(self, p: QPainter, r: QRectF) -> None:
        mid, half = r.center().y(), r.height() / 2 / 1.05
        for frac, text in ((1, f"{self.peak:.2g}"), (0, "0"), (-1, f"{-self.peak:.2g}")):
            y = mid - frac * half
            p.drawLine(QPointF(r.left() - 4, y), QPointF(r.left(), y))
            p.drawText(QRectF(0, y - 8, self.LEFT - 6, 16), Qt.AlignRight | Qt.AlignVCenter, text)


class SpectrogramView(_Panel):
    """A spectrogram image (0..8 kHz) with a kHz axis."""

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(title, parent)
        self.image: QImage | None = None

    def set_image(self, image: QImage | None, duration: float = 0.0, hint: str = "", span: float = 0.0) -> None:
        self.image, self.duration, self.hint = image, duration if image is not None else 0.0, hint
        self.span = span
        self.update()

    def draw_data(self, p: QPainter, r: QRectF) -> None:
        p.setRenderHint(QPainter.SmoothPixmapTransform, True)
        p.drawImage(r, self.image)

    def draw_y_axis(self, p: QPainter, r: QRectF) -> None:
        top_khz = SAMPLE_RATE / 2000
        for khz in range(0, int(top_khz) + 1, 2):
            y = r.bottom() - r.height() * khz / top_khz
            p.drawLine(QPointF(r.left() - 4, y), QPointF(r.left(), y))
            p.drawText(QRectF(0, y - 8, self.LEFT - 6, 16), Qt.AlignRight | Qt.AlignVCenter, f"{khz}k" if khz else "0")


class AudioPlots(QWidget):
    """2x2 grid: waveform and spectrogram (rows) of the original and cloaked audio (columns)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        self.wave = {"original": WaveformView("Original — waveform", ORIGINAL_COLOR),
                     "cloaked": WaveformView("Cloaked — waveform", CLOAKED_COLOR)}
        self.spec = {"original": SpectrogramView("Original — spectrogram"),
                     "cloaked": SpectrogramView("Cloaked — spectrogram")}
        for col, kind in enumerate(("original", "cloaked")):
            grid.addWidget(self.wave[kind], 0, col)
            grid.addWidget(self.spec[kind], 1, col)
        grid.setRowStretch(0, 2)
        grid.setRowStretch(1, 3)
        self.clear()

    def clear(self) -> None:
        self._empty("original", "open a file, drop one here, or record")
        self._empty("cloaked", "press Cloak")

    def _empty(self, kind: str, hint: str) -> None:
        self.wave[kind].set_wave(None, hint=hint)
        self.spec[kind].set_image(None, hint=hint)

    def show_audio(self, original: np.ndarray, samplerate: int, cloaked: np.ndarray | None = None) -> None:
        """Show ``original`` and, if given, ``cloaked`` (``(frames,)`` or ``(frames, channels)``).

        Both share one time scale. ``cloaked`` may be longer or shorter than ``original`` (a
        re-synthesizing mode changes the timing); the magnified perturbation is drawn only when
        the lengths match, since only then is the difference a perturbation.
        """
        mono = original.mean(axis=1) if original.ndim == 2 else original
        peak = float(np.abs(mono).max()) if len(mono) else 1.0
        spec = spectrogram_db(to_model_rate(original.reshape(len(original), -1), samplerate, SAMPLE_RATE))
        vmax, duration = float(spec.max()), len(original) / samplerate
        if cloaked is None:
            self.wave["original"].set_wave(mono, samplerate, peak)
            self.spec["original"].set_image(spectrogram_image(spec, vmax), duration)
            self._empty("cloaked", "press Cloak")
            return
        cmono = cloaked.mean(axis=1) if cloaked.ndim == 2 else cloaked
        cspec = spectrogram_db(to_model_rate(cloaked.reshape(len(cloaked), -1), samplerate, SAMPLE_RATE))
        span = max(duration, len(cloaked) / samplerate)
        peak = max(peak, float(np.abs(cmono).max()) if len(cmono) else 0.0)  # one amplitude scale for both
        self.wave["original"].set_wave(mono, samplerate, peak, span=span)
        self.spec["original"].set_image(spectrogram_image(spec, vmax), duration, span=span)
        overlay = cmono - mono if len(cmono) == len(mono) else None
        self.wave["cloaked"].set_wave(cmono, samplerate, peak, overlay=overlay, span=span)
        self.spec["cloaked"].set_image(spectrogram_image(cspec, vmax), len(cloaked) / samplerate, span=span)
