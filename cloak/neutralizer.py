"""Move the emotion cues of a voice toward a calm, neutral delivery (WORLD analysis/synthesis).

Emotion changes *how* a sentence is spoken: pitch level, range and contour; loudness and its
dynamics; vocal effort (spectral tilt); speaking rate and pauses. The neutralizer analyses
speech with the WORLD vocoder (F0, spectral envelope, aperiodicity), moves each of those cues
part of the way toward a neutral reference, and resynthesizes. Formants (the spectral envelope's
shape) and the aperiodicity are kept, so words and the speaker's timbre survive.

Reference values are the means of the EmoDB *training* speakers' neutral clips (speakers 03 and
08 never seen): see ``benchmarks/neutral_reference.py``. ``strength`` 0 is the vocoder alone
(a control); 1 moves every cue all the way.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():  # pyworld imports the deprecated pkg_resources for its version string
    warnings.simplefilter("ignore")
    import pyworld

FRAME_PERIOD_MS = 5.0
F0_FLOOR, F0_CEIL = 60.0, 600.0
# Neutral reference, from the EmoDB training speakers' neutral clips (benchmarks/neutral_reference.py).
NEUTRAL_TILT_DB_PER_OCT = -8.2  # regression slope of the voiced envelope, 100 Hz - 5 kHz
NEUTRAL_F0_OVER_FLOOR = 1.39  # median voiced F0 / 5th percentile: a neutral voice sits this far above its floor
NEUTRAL_SYLLABLE_RATE = 5.8  # syllable nuclei per second of phonation
# Median aperiodicity (dB) of voiced speech in 0-1, 1-2, 2-4 and 4-8 kHz: breathiness / pressed voice.
AP_BANDS_HZ = ((0.0, 1000.0), (1000.0, 2000.0), (2000.0, 4000.0), (4000.0, 8000.0))
NEUTRAL_AP_DB = (-25.4, -16.6, -4.5, -0.9)
TARGET_RMS_DBFS = -24.0  # level of the active speech after neutralizing
MAX_PAUSE_S = 0.25
TILT_BAND_HZ = (100.0, 5000.0)
TILT_PIVOT_HZ = 1000.0


@dataclass(frozen=True)
class NeutralizeConfig:
    """How far to move each cue toward neutral (0 = keep, 1 = all the way), all scaled by ``strength``.

    ``strength`` is the user's "calm" setting: 0 is the vocoder alone, 1 moves every cue all the
    way to the neutral reference; the default sits on the measured frontier (README).

    ``pitch_range``: shrink the F0 excursions around the utterance's level.
    ``pitch_level``: move the F0 level toward where a neutral voice sits above its floor.
    ``loudness``: flatten frame-level loudness dynamics (the output level is always normalized).
    ``tilt``: set the spectral tilt (vocal effort) toward the neutral slope.
    ``rate``: time-stretch the phonation toward a neutral syllable rate; long pauses are shortened.
    ``voice_quality``: move the aperiodicity (breathy or pressed voice) of voiced speech toward neutral.
    """

    strength: float = 0.7
    pitch_range: float = 1.0
    pitch_level: float = 1.0
    loudness: float = 1.0
    tilt: float = 1.0
    rate: float = 1.0
    voice_quality: float = 1.0
    max_stretch: float = 1.35

    def __post_init__(self) -> None:
        for name in ("strength", "pitch_range", "pitch_level", "loudness", "tilt", "rate", "voice_quality"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0 or math.isnan(v):
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if not 1.0 <= self.max_stretch <= 2.0:
            raise ValueError(f"max_stretch must be in [1, 2], got {self.max_stretch}")

    def amount(self, cue: str) -> float:
        """The fraction of the way to neutral for ``cue`` after scaling by ``strength``."""
        return self.strength * getattr(self, cue)


@dataclass(frozen=True)
class Analysis:
    """WORLD parameters of one clip: F0 (Hz, 0 = unvoiced), envelope and aperiodicity per frame."""

    f0: np.ndarray  # (frames,)
    sp: np.ndarray  # (frames, bins) power spectral envelope
    ap: np.ndarray  # (frames, bins) aperiodicity in [0, 1]
    sample_rate: int

    @property
    def freqs(self) -> np.ndarray:
        return np.linspace(0, self.sample_rate / 2, self.sp.shape[1])


def analyse(wave: np.ndarray, sample_rate: int) -> Analysis:
    """WORLD analysis of mono ``wave`` (DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity)."""
    x = np.ascontiguousarray(wave, dtype=np.float64)
    f0, t = pyworld.dio(x, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, t, sample_rate)
    f0 = _clean_voicing(f0)
    fft_size = pyworld.get_cheaptrick_fft_size(sample_rate, F0_FLOOR)  # the same bins for both
    sp = pyworld.cheaptrick(x, f0, t, sample_rate, f0_floor=F0_FLOOR, fft_size=fft_size)
    ap = pyworld.d4c(x, f0, t, sample_rate, fft_size=fft_size)
    return Analysis(f0, sp, ap, sample_rate)


def synthesize(a: Analysis) -> np.ndarray:
    """WORLD synthesis back to a float32 waveform."""
    return pyworld.synthesize(np.ascontiguousarray(a.f0), np.ascontiguousarray(a.sp), np.ascontiguousarray(a.ap),
                              a.sample_rate, FRAME_PERIOD_MS).astype(np.float32)


def _clean_voicing(f0: np.ndarray, min_run: int = 4) -> np.ndarray:
    """Drop voiced islands shorter than ``min_run`` frames (octave errors and clicks)."""
    f0 = f0.copy()
    voiced = f0 > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    for s, e in zip(edges[::2], edges[1::2]):
        if e - s < min_run:
            f0[s:e] = 0.0
    return f0


def _moving_average(x: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or len(x) == 0:
        return x
    pad = np.pad(x, (k // 2, k - 1 - k // 2), mode="edge")
    return np.convolve(pad, np.ones(k) / k, mode="valid")


def frame_level_db(a: Analysis) -> np.ndarray:
    """Frame loudness in dB (envelope power summed over frequency)."""
    return 10 * np.log10(a.sp.sum(axis=1) + 1e-20)


def active_frames(level_db: np.ndarray, below_peak_db: float = 35.0) -> np.ndarray:
    """Frames within ``below_peak_db`` of the loud end of the clip (speech, not pauses)."""
    return level_db > np.percentile(level_db, 98) - below_peak_db


def spectral_tilt(a: Analysis) -> np.ndarray:
    """Per-frame slope (dB per octave) of the log envelope over :data:`TILT_BAND_HZ`."""
    f = a.freqs
    band = (f >= TILT_BAND_HZ[0]) & (f <= TILT_BAND_HZ[1])
    octaves = np.log2(f[band] / TILT_PIVOT_HZ)
    centered = octaves - octaves.mean()
    db = 10 * np.log10(a.sp[:, band] + 1e-20)
    return (db - db.mean(axis=1, keepdims=True)) @ centered / (centered @ centered)


def syllable_rate(a: Analysis) -> tuple[float, float]:
    """(syllable nuclei per second of phonation, phonation seconds), after de Jong & Wempe (2009).

    Nuclei are voiced peaks of the smoothed loudness that stand at least 2 dB above the dips on
    either side and lie within 25 dB of the loudest frame, at least 100 ms apart.
    """
    frame_s = FRAME_PERIOD_MS / 1000
    level = _moving_average(frame_level_db(a), 5)
    voiced = a.f0 > 0
    thresh = np.percentile(level, 99) - 25
    min_gap = int(0.1 / frame_s)
    peaks: list[int] = []
    for i in range(1, len(level) - 1):
        if not (voiced[i] and level[i] >= thresh and level[i] >= level[i - 1] and level[i] > level[i + 1]):
            continue
        lo, hi = max(0, i - min_gap), min(len(level), i + min_gap + 1)
        if level[i] - level[lo:i].min(initial=level[i]) < 2 and level[i] - level[i + 1:hi].min(initial=level[i]) < 2:
            continue
        if peaks and i - peaks[-1] < min_gap:
            if level[i] > level[peaks[-1]]:
                peaks[-1] = i
            continue
        peaks.append(i)
    phonation = float(active_frames(frame_level_db(a)).sum() * frame_s)
    return (len(peaks) / phonation if phonation > 0 else 0.0), phonation


def _neutral_pitch(a: Analysis, cfg: NeutralizeConfig) -> np.ndarray:
    f0 = a.f0.copy()
    voiced = f0 > 0
    if voiced.sum() < 10:
        return f0
    lf = np.log(f0[voiced])
    level = float(np.median(lf))
    target = float(np.percentile(lf, 5)) + math.log(NEUTRAL_F0_OVER_FLOOR)
    new_level = level + cfg.amount("pitch_level") * (target - level)
    keep = 1.0 - cfg.amount("pitch_range")
    # Smooth micro-prosody (jitter) within each voiced run, then shrink excursions around the level.
    smooth = np.empty_like(lf)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    pos = 0
    for s, e in zip(edges[::2], edges[1::2]):
        smooth[pos:pos + e - s] = _moving_average(lf[pos:pos + e - s], 5)
        pos += e - s
    f0[voiced] = np.exp(new_level + keep * (smooth - level))
    return np.clip(f0, F0_FLOOR, F0_CEIL) * voiced


def _neutral_envelope(a: Analysis, cfg: NeutralizeConfig) -> np.ndarray:
    """Tilt toward neutral, loudness dynamics compressed; returns a new envelope."""
    sp = a.sp.copy()
    level = frame_level_db(a)
    active = active_frames(level)
    # Vocal effort: move the spectral tilt (linear in octaves around 1 kHz) of voiced speech toward
    # neutral, frame by frame (effort rises on stressed and emotional syllables); unvoiced frames
    # (fricatives carry their own tilt, which words need) get the utterance's static correction.
    voiced = active & (a.f0 > 0)
    amount = cfg.amount("tilt")
    if voiced.sum() >= 10:
        tilt = _moving_average(spectral_tilt(a), 9)
        correction = np.where(voiced, amount * (NEUTRAL_TILT_DB_PER_OCT - tilt),
                              amount * (NEUTRAL_TILT_DB_PER_OCT - float(np.median(tilt[voiced]))))
        correction = _moving_average(correction, 9)
    else:
        correction = np.zeros(len(level))
    octaves = np.log2(np.maximum(a.freqs, 50.0) / TILT_PIVOT_HZ)
    gain_db = correction[:, None] * np.clip(octaves, -2.0, 3.0)[None, :]
    # Loudness dynamics: pull the smoothed frame level of speech toward its mean.
    smooth = _moving_average(level, 21)
    mean = float(smooth[active].mean()) if active.any() else 0.0
    presence = _moving_average(active.astype(np.float64), 21)  # fades the gain in and out of pauses
    gain_db += (np.clip(cfg.amount("loudness") * (mean - smooth), -12.0, 12.0) * presence)[:, None]
    sp *= 10 ** (gain_db / 10)
    return sp


def _neutral_aperiodicity(a: Analysis, cfg: NeutralizeConfig) -> np.ndarray:
    """Shift the voiced frames' aperiodicity per band toward the neutral medians (smooth in frequency)."""
    amount = cfg.amount("voice_quality")
    voiced = (a.f0 > 0) & active_frames(frame_level_db(a))
    if amount == 0 or voiced.sum() < 10:
        return a.ap
    f = a.freqs
    ap_db = 10 * np.log10(np.maximum(a.ap, 1e-12))
    centers, shifts = [], []
    for (lo, hi), ref in zip(AP_BANDS_HZ, NEUTRAL_AP_DB):
        band = (f >= lo) & (f < hi)
        if band.any():
            centers.append(np.sqrt(max(lo, 250.0) * hi))
            shifts.append(amount * (ref - float(np.median(ap_db[voiced][:, band]))))
    curve = np.interp(np.log(np.maximum(f, 1.0)), np.log(centers), shifts)
    out = a.ap.copy()
    out[voiced] = np.minimum(10 ** ((ap_db[voiced] + curve) / 10), 1.0)
    return out


def _retime(a: Analysis, f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, cfg: NeutralizeConfig) -> Analysis:
    """Stretch time toward the neutral syllable rate and shorten long pauses."""
    frame_s = FRAME_PERIOD_MS / 1000
    amount = cfg.amount("rate")
    rate, _ = syllable_rate(a)
    speed = 1.0
    if amount > 0 and rate > 0:
        speed = float(np.clip((NEUTRAL_SYLLABLE_RATE / rate) ** amount, 1 / cfg.max_stretch, cfg.max_stretch))
    # Frame positions to read: speech advances by `speed` frames per output frame; pauses beyond
    # MAX_PAUSE_S are skipped (scaled by the amount, so strength 0 keeps every frame).
    active = active_frames(frame_level_db(a))
    max_pause = int(MAX_PAUSE_S / frame_s / max(amount, 1e-3)) if amount > 0 else len(f0)
    positions: list[float] = []
    t, run = 0.0, 0
    n = len(f0)
    while t < n - 1:
        i = int(t)
        run = 0 if active[i] else run + 1
        if run <= max_pause:
            positions.append(t)
        t += speed if active[i] else 1.0
    pos = np.asarray(positions)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None]
    new_sp = np.exp((1 - w) * np.log(sp[lo] + 1e-20) + w * np.log(sp[hi] + 1e-20))
    new_ap = (1 - w) * ap[lo] + w * ap[hi]
    nearest = np.where(w[:, 0] < 0.5, lo, hi)
    voiced = f0[nearest] > 0
    both = (f0[lo] > 0) & (f0[hi] > 0)
    interp = np.where(both, np.exp((1 - w[:, 0]) * np.log(np.maximum(f0[lo], 1)) + w[:, 0] * np.log(np.maximum(f0[hi], 1))),
                      f0[nearest])
    return Analysis(np.where(voiced, interp, 0.0), new_sp, new_ap, a.sample_rate)


def normalize_level(wave: np.ndarray, target_dbfs: float = TARGET_RMS_DBFS, peak: float = 0.98) -> np.ndarray:
    """Scale so the active speech's RMS is ``target_dbfs`` (10 ms frames, top-level ones), peak-limited."""
    hop = 160
    n = len(wave) // hop
    if n == 0:
        return wave
    rms = np.sqrt(np.mean(wave[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)
    db = 20 * np.log10(rms)
    active = db > np.percentile(db, 98) - 35
    current = 10 * np.log10(np.mean(rms[active] ** 2))
    gain = 10 ** ((target_dbfs - current) / 20)
    top = float(np.abs(wave).max()) * gain
    if top > peak:
        gain *= peak / top
    return (wave * gain).astype(np.float32)


class Neutralizer:
    """``(wave, sample_rate) -> neutral wave`` at the same rate; the duration may change with ``rate``.

    >>> calm = Neutralizer(NeutralizeConfig(strength=1.0))(wave, 16_000)
    """

    def __init__(self, config: NeutralizeConfig = NeutralizeConfig()) -> None:
        self.config = config

    def __call__(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        if wave.ndim != 1 or len(wave) == 0:
            raise ValueError(f"expected a non-empty mono waveform, got shape {wave.shape}")
        a = analyse(wave, sample_rate)
        f0 = _neutral_pitch(a, self.config)
        sp = _neutral_envelope(a, self.config)
        out = synthesize(_retime(a, f0, sp, _neutral_aperiodicity(a, self.config), self.config))
        return normalize_level(out) if self.config.strength > 0 else _match_level(out, wave)


def _match_level(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Give ``out`` the RMS of ``ref`` (strength 0: the vocoder alone, at the input's level)."""
    r_out = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    r_ref = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    return (out * (r_ref / r_out)).astype(np.float32) if r_out > 0 else out
