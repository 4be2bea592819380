"""Move the emotion cues of a voice toward a calm, neutral delivery (WORLD analysis/synthesis).

Emotion changes *how* a sentence is spoken: pitch level, range and contour; loudness and its
dynamics; vocal effort (the envelope's balance of low and high frequencies); speaking rate and
pauses. The neutralizer analyses speech with the WORLD vocoder (F0, spectral envelope,
aperiodicity), moves each of those cues part of the way toward a neutral reference, and
resynthesizes the voiced frames; consonants and pauses are copied from the input (retimed and
level-matched), since the vocoder's noise excitation is where its quality is lost. Formants are
kept, so words and the speaker's timbre survive.

Reference values are the means of the EmoDB *training* speakers' neutral clips (speakers 03 and
08 never seen): see ``benchmarks/neutral_reference.py``. ``strength`` 0 is the vocoder alone
(a control); 1 moves every cue all the way (``tolerance`` can leave a calm voice's own cues alone).
The pitch level is measured against the voice's own floor, so a high voice stays high.
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
NEUTRAL_F0_OVER_FLOOR = 1.33  # median voiced F0 / its floor (pitch_floor): a neutral voice sits this far above it
OCTAVE_ERROR = 0.8  # octaves: voiced F0 this far below the clip's median is DIO halving the period, not the voice
NEUTRAL_SYLLABLE_RATE = 5.8  # syllable nuclei per second of phonation
# Median aperiodicity (dB) of voiced speech in 0-1, 1-2, 2-4 and 4-8 kHz: breathiness / pressed voice.
AP_BANDS_HZ = ((0.0, 1000.0), (1000.0, 2000.0), (2000.0, 4000.0), (4000.0, 8000.0))
NEUTRAL_AP_DB = (-25.4, -16.6, -4.5, -0.9)
TARGET_RMS_DBFS = -24.0  # level of the active speech after neutralizing
MAX_PAUSE_S = 0.12  # README: 0.25 s left sad clips their long silences, which retrained and RAVDESS judges read
CROSSFADE_S = 0.01  # between the vocoder (voiced frames) and the input (consonants, pauses)
# Vocal effort as the envelope's shape: band edges (Hz) and the two leading principal components of
# how the EmoDB training speakers' voiced envelopes differ from their own neutral ones (66 % and
# 10 % of the variance: high-arousal brightness, and the mid dip of sadness), with the neutral
# clips' mean coordinates. From benchmarks/neutral_reference.py.
EFFORT_EDGES_HZ = tuple(float(f) for f in np.geomspace(80.0, 7800.0, 25))
EFFORT_BASIS = (
    (-0.34, -0.339, -0.331, -0.318, -0.29, -0.234, -0.174, -0.116, -0.062, -0.006, 0.07, 0.159,
     0.184, 0.191, 0.197, 0.155, 0.202, 0.214, 0.178, 0.183, 0.136, 0.125, 0.106, 0.11),
    (0.123, 0.122, 0.112, 0.092, 0.05, -0.036, -0.133, -0.221, -0.297, -0.36, -0.381, -0.324,
     -0.183, -0.12, -0.07, 0.03, 0.101, 0.123, 0.134, 0.188, 0.249, 0.3, 0.235, 0.266),
)
NEUTRAL_EFFORT = (-70.61, -35.12)
# How much neutral speech differs between speakers (SD of the training speakers' mean neutral
# values): log F0 over floor, log syllable rate, the effort coordinates and AP_BANDS_HZ medians (dB).
SPEAKER_SD = {"pitch_level": 0.053, "rate": 0.050, "effort": (7.24, 5.27), "voice_quality": (0.19, 0.49, 1.0, 0.25)}


@dataclass(frozen=True)
class NeutralizeConfig:
    """How far to move each cue toward neutral (0 = keep, 1 = all the way), all scaled by ``strength``.

    ``strength`` is the user's "calm" setting: 0 is the vocoder alone, 1 (the default) moves every
    cue that is on all the way to the neutral reference; the README's frontier shows what each point costs.

    ``pitch_range``: shrink the F0 excursions around the utterance's level.
    ``pitch_level``: move the F0 level toward where a neutral voice sits above its floor.
    ``loudness``: flatten frame-level loudness dynamics (the output level is always normalized).
    Off by default: at calm 1 on EmoDB 03+08 it hides more from ComParE (0.53 against 0.37), eGeMAPS
    and the Whisper probe, less from gru-mel and the speaker probe, and costs WER +0.019 over the
    default (a rise of +0.048 over clean) and similarity 0.02 (README: the frontier); ``--flatten-loudness``.
    ``effort``: move the envelope's balance of low against high frequencies (vocal effort) toward neutral.
    ``rate``: time-stretch the phonation toward a neutral syllable rate; long pauses are shortened.
    ``voice_quality``: move the aperiodicity (breathy or pressed voice) of voiced speech toward neutral.
    ``steadiness``: steady the voiced envelope's frame-to-frame flicker (a running mean over
    ``steadiness_window_s``, three frames: short enough to keep the formant transitions). Off by
    default: on EmoDB 03+08 it hides more from ComParE (0.50 against 0.37) and the speaker probe,
    less from gru-mel, for WER +0.009; on RAVDESS no judge moves (README: the steady envelope).
    ``rate_gain``: how many times its measured gap a slow voice is sped up by (slowing a fast voice
    keeps gain 1). The estimate reads only part of the slowness: on EmoDB 03+08 a sentence read sadly
    takes 1.79 times as long as the same speaker's neutral reading, and still 1.45 times after the
    default, 1.26 at gain 2 with ``consonant_pace`` 1 (README: the guarded attack).
    ``consonant_pace``: how far the unvoiced speech between the vowels follows the voiced speed
    (0: consonants keep their length, the default; 1: the whole phonation is retimed, as it is measured).
    ``effort_window_s``, ``loudness_window_s``: how slowly the effort and loudness corrections
    follow the voice. Slower corrections move the phrase and leave each vowel's colour and each
    syllable's stress alone: against 45 ms and 105 ms, WER +0.03 instead of +0.06 and DNSMOS
    OVRL -0.2 instead of -0.44 at calm 0.85, for less hiding from gru-mel (README: the ablation).
    ``tolerance``: how far (in :data:`SPEAKER_SD`, the spread of the training speakers' own neutral
    voices) the pitch level, rate, effort and voice quality of a clip may sit from the neutral
    reference before they are moved; only the part beyond it is corrected. 0, the default: once the
    pitch floor stopped sinking with DIO's octave errors, every cue moved all the way kept more of
    the voice than 0.5 had with the old floor (similarity 0.825 against 0.816 on EmoDB 03+08, 0.767
    against 0.740 on RAVDESS 17-20) and hid more from ComParE (README: the pitch floor).
    ``consonant_boost``: how much of the loudness cue's *lift* the copied consonants and pauses
    get when that cue is on (0 = never turned up: less breath and room noise); they are always
    turned down where speech is.
    ``edge_silence``: 1 keeps the silence before the first and after the last speech frame whole (only
    pauses between speech are cut to :data:`MAX_PAUSE_S`). Off by default: in scratch on 60 RAVDESS
    17-20 clips it lifted the default's DNSMOS OVRL 2.743 -> 2.871, but over all 240 the MFCC CNN's
    hiding fell 0.50 -> 0.38 (README: what RAVDESS's listener figures pay for).
    """

    strength: float = 1.0
    pitch_range: float = 1.0
    pitch_level: float = 1.0
    loudness: float = 0.0
    effort: float = 1.0
    rate: float = 1.0
    voice_quality: float = 1.0
    steadiness: float = 0.0
    rate_gain: float = 1.0
    consonant_pace: float = 0.0
    max_stretch: float = 1.35
    tolerance: float = 0.0
    consonant_boost: float = 1.0
    edge_silence: float = 0.0
    effort_window_s: float = 0.25
    loudness_window_s: float = 0.3
    steadiness_window_s: float = 0.015

    def __post_init__(self) -> None:
        for name in ("strength", "pitch_range", "pitch_level", "loudness", "effort", "rate", "voice_quality", "steadiness",
                     "consonant_pace", "edge_silence"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0 or math.isnan(v):
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if not 0.0 <= self.consonant_boost <= 1.0:
            raise ValueError(f"consonant_boost must be in [0, 1], got {self.consonant_boost}")
        for name in ("effort_window_s", "loudness_window_s", "steadiness_window_s"):
            if not 0.0 < getattr(self, name) <= 2.0:
                raise ValueError(f"{name} must be in (0, 2] seconds, got {getattr(self, name)}")
        if not 0.0 <= self.tolerance <= 3.0:
            raise ValueError(f"tolerance must be in [0, 3] speaker SDs, got {self.tolerance}")
        if not 1.0 <= self.rate_gain <= 3.0:
            raise ValueError(f"rate_gain must be in [1, 3], got {self.rate_gain}")
        if not 1.0 <= self.max_stretch <= 2.0:
            raise ValueError(f"max_stretch must be in [1, 2], got {self.max_stretch}")

    def amount(self, cue: str) -> float:
        """The fraction of the way to neutral for ``cue`` after scaling by ``strength``."""
        return self.strength * getattr(self, cue)

    def toward(self, cue: str, gap):
        """The correction for a ``gap`` (target - current) in ``cue``: the part beyond ``tolerance``
        speaker SDs, scaled by :meth:`amount`. Voices within the spread of neutral speakers keep their own."""
        width = self.tolerance * np.asarray(SPEAKER_SD[cue])
        return self.amount(cue) * np.sign(gap) * np.maximum(np.abs(gap) - width, 0.0)


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


def _frames(seconds: float) -> int:
    return max(1, round(seconds * 1000 / FRAME_PERIOD_MS))


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


def pitch_floor(log_f0: np.ndarray) -> float:
    """The voice's floor: the 5th percentile of voiced log F0, leaving out DIO's octave errors.

    In high and loud voices DIO often halves the period on a few frames; those frames would sink
    the floor an octave, and the pitch level with it (a woman's neutral voice, 183 Hz, moved to 108 Hz).
    """
    log_f0 = np.asarray(log_f0)
    return float(np.percentile(log_f0[log_f0 > np.median(log_f0) - OCTAVE_ERROR * math.log(2)], 5))


def neutral_pitch_level(a: Analysis) -> float:
    """The log F0 a neutral delivery of this voice sits at: :data:`NEUTRAL_F0_OVER_FLOOR` above the clip's floor."""
    return pitch_floor(np.log(a.f0[a.f0 > 0])) + math.log(NEUTRAL_F0_OVER_FLOOR)


def _neutral_pitch(a: Analysis, cfg: NeutralizeConfig) -> np.ndarray:
    f0 = a.f0.copy()
    voiced = f0 > 0
    if voiced.sum() < 10:
        return f0
    lf = np.log(f0[voiced])
    level = float(np.median(lf))
    new_level = level + float(cfg.toward("pitch_level", neutral_pitch_level(a) - level))
    keep = 1.0 - cfg.amount("pitch_range")
    # Shrink the intonation (the contour smoothed over 65 ms within each voiced run) around the
    # level and keep the micro-prosody on top of it: a contour without its jitter sounds buzzy
    # (DNSMOS OVRL 2.54 -> 2.74 at calm 0.7 when kept).
    smooth = np.empty_like(lf)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    pos = 0
    for s, e in zip(edges[::2], edges[1::2]):
        smooth[pos:pos + e - s] = _moving_average(lf[pos:pos + e - s], 13)
        pos += e - s
    f0[voiced] = np.exp(new_level + keep * (smooth - level) + (lf - smooth))
    return np.clip(f0, F0_FLOOR, F0_CEIL) * voiced


def _loudness_gain_db(a: Analysis, cfg: NeutralizeConfig) -> np.ndarray:
    """Per-frame gain (dB) pulling the smoothed frame level of speech toward its mean."""
    level = frame_level_db(a)
    active = active_frames(level)
    smooth = _moving_average(level, _frames(cfg.loudness_window_s))
    mean = float(smooth[active].mean()) if active.any() else 0.0
    presence = _moving_average(active.astype(np.float64), 21)  # fades the gain in and out of pauses
    return np.clip(cfg.amount("loudness") * (mean - smooth), -12.0, 12.0) * presence


def band_matrix(freqs: np.ndarray) -> np.ndarray:
    """``(bands, bins)`` averaging weights of the envelope bins inside each effort band."""
    edges = np.asarray(EFFORT_EDGES_HZ)
    m = ((freqs[None, :] >= edges[:-1, None]) & (freqs[None, :] < edges[1:, None])).astype(np.float64)
    return m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)


def effort_coordinates(a: Analysis) -> np.ndarray:
    """``(frames, 2)`` coordinates of each frame's log envelope on :data:`EFFORT_BASIS`."""
    db = 10 * np.log10(a.sp + 1e-20)
    return (db @ band_matrix(a.freqs).T) @ np.asarray(EFFORT_BASIS).T


def _effort_gain_db(a: Analysis, cfg: NeutralizeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Envelope gains (dB) moving the effort coordinates toward neutral: per frame, and static.

    Voiced frames get the correction smoothed over ``effort_window_s`` (a frame-by-frame one would
    also flatten the vowels' own colour: WER); the static ``(bins,)`` curve is the utterance's median
    correction, for everything else (consonants and pauses).
    """
    amount = cfg.amount("effort")
    voiced = (a.f0 > 0) & active_frames(frame_level_db(a))
    if voiced.sum() < 10 or amount == 0:
        return np.zeros_like(a.sp), np.zeros(a.sp.shape[1])
    coords = np.stack([_moving_average(c, 9) for c in effort_coordinates(a).T], axis=1)
    median = np.median(coords[voiced], axis=0)
    static = cfg.toward("effort", np.asarray(NEUTRAL_EFFORT) - median)
    corr = np.where(voiced[:, None], static + amount * (median - coords), static)
    k = _frames(cfg.effort_window_s)
    corr = np.stack([_moving_average(c, k) for c in corr.T], axis=1)
    edges = np.asarray(EFFORT_EDGES_HZ)
    centers = np.log(np.sqrt(edges[:-1] * edges[1:]))
    curves = np.stack([np.interp(np.log(np.maximum(a.freqs, 1.0)), centers, b) for b in EFFORT_BASIS])
    return corr @ curves, static @ curves


def equalize(wave: np.ndarray, gain_db: np.ndarray) -> np.ndarray:
    """``wave`` through the zero-phase FIR whose gain at ``rfft`` bins of ``2 (len(gain_db) - 1)`` is ``gain_db``."""
    if not np.any(gain_db):
        return wave
    n = 2 * (len(gain_db) - 1)
    h = np.roll(np.fft.irfft(10 ** (gain_db / 20), n), n // 2) * np.hanning(n)
    size = 1 << int(np.ceil(np.log2(len(wave) + n)))
    y = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(h, size), size)
    return y[n // 2: n // 2 + len(wave)]


def band_aperiodicity_db(a: Analysis, frames: np.ndarray) -> np.ndarray:
    """Median aperiodicity (dB) of ``frames`` in each of :data:`AP_BANDS_HZ` (NaN for a band above Nyquist)."""
    ap_db = 10 * np.log10(np.maximum(a.ap[frames], 1e-12))
    bands = [(a.freqs >= lo) & (a.freqs < hi) for lo, hi in AP_BANDS_HZ]
    return np.array([np.median(ap_db[:, b]) if b.any() else np.nan for b in bands])


def _neutral_aperiodicity(a: Analysis, cfg: NeutralizeConfig) -> np.ndarray:
    """Shift the voiced frames' aperiodicity per band toward the neutral medians (smooth in frequency)."""
    amount = cfg.amount("voice_quality")
    voiced = (a.f0 > 0) & active_frames(frame_level_db(a))
    if amount == 0 or voiced.sum() < 10:
        return a.ap
    centers = [np.sqrt(max(lo, 250.0) * hi) for lo, hi in AP_BANDS_HZ]
    gaps = np.nan_to_num(np.asarray(NEUTRAL_AP_DB) - band_aperiodicity_db(a, voiced))  # an empty band: no gap
    curve = np.interp(np.log(np.maximum(a.freqs, 1.0)), np.log(centers), cfg.toward("voice_quality", gaps))
    ap_db = 10 * np.log10(np.maximum(a.ap, 1e-12))
    out = a.ap.copy()
    out[voiced] = np.minimum(10 ** ((ap_db[voiced] + curve) / 10), 1.0)
    return out


def steady_envelope(a: Analysis, cfg: NeutralizeConfig) -> Analysis:
    """``a`` with each voiced frame's log envelope averaged with its neighbours over
    ``steadiness_window_s`` (scaled by the amount; an odd number of frames, 1 = unchanged)."""
    half = round(cfg.amount("steadiness") * cfg.steadiness_window_s * 1000 / FRAME_PERIOD_MS) // 2
    voiced = a.f0 > 0
    if half == 0 or not voiced.any():
        return a
    log_sp = np.log(a.sp + 1e-20)
    mean = np.stack([_moving_average(c, 2 * half + 1) for c in log_sp.T], axis=1)
    return Analysis(a.f0, np.where(voiced[:, None], np.exp(mean), a.sp), a.ap, a.sample_rate)


def read_positions(a: Analysis, cfg: NeutralizeConfig) -> np.ndarray:
    """Input frame position (fractional) read at each output frame.

    Voiced speech advances by a speed that moves the syllable rate toward neutral (a slow voice
    ``rate_gain`` times its gap); consonants by that speed to the power ``consonant_pace`` (0: one
    frame per frame); pauses beyond :data:`MAX_PAUSE_S` are skipped (scaled by the amount, so
    strength 0 keeps every frame), those before the first and after the last speech frame too unless
    ``edge_silence`` is on.
    """
    frame_s = FRAME_PERIOD_MS / 1000
    amount = cfg.amount("rate")
    rate, _ = syllable_rate(a)
    speed = 1.0
    if amount > 0 and rate > 0:
        gap = float(cfg.toward("rate", math.log(NEUTRAL_SYLLABLE_RATE / rate)))
        speed = float(np.clip(np.exp(gap * (cfg.rate_gain if gap > 0 else 1.0)), 1 / cfg.max_stretch, cfg.max_stretch))
    consonant_speed = speed ** cfg.consonant_pace
    active = active_frames(frame_level_db(a))
    voiced = a.f0 > 0
    max_pause = int(MAX_PAUSE_S / frame_s / max(amount, 1e-3)) if amount > 0 else len(a.f0)
    speech = np.flatnonzero(active)
    first, last = (speech[0], speech[-1]) if cfg.edge_silence >= 0.5 and len(speech) else (0, len(a.f0))  # cut between
    positions: list[float] = []
    t, run, n = 0.0, 0, len(a.f0)
    while t < n - 1:
        i = int(t)
        run = 0 if active[i] else run + 1
        if run <= max_pause or not first <= i <= last:
            positions.append(t)
        t += (speed if voiced[i] else consonant_speed) if active[i] else 1.0
    return np.asarray(positions)


def _resample_frames(pos: np.ndarray, f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, sample_rate: int) -> Analysis:
    """WORLD parameters read at fractional frame positions (log-linear envelope, nearest voicing)."""
    n = len(f0)
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
    return Analysis(np.where(voiced, interp, 0.0), new_sp, new_ap, sample_rate)


def overlap_add_copy(wave: np.ndarray, pos: np.ndarray, hop: int, length: int) -> np.ndarray:
    """The input read at frame positions ``pos``: Hann-windowed 2-hop grains overlap-added one hop apart.

    Where ``pos`` advances one frame per frame this is the input itself (shifted); where it jumps
    (a skipped pause) the two sides crossfade over one hop.
    """
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2 * hop) / (2 * hop))  # periodic: sums to 1 at 50 %
    starts = np.round(pos * hop).astype(int) - hop
    idx = starts[:, None] + np.arange(2 * hop)[None, :]
    padded = np.concatenate([wave, [0.0]])
    grains = padded[np.where((idx >= 0) & (idx < len(wave)), idx, len(wave))] * window
    out = np.zeros((len(pos) + 1) * hop)
    blocks = out.reshape(len(pos) + 1, hop)
    blocks[:-1] += grains[:, :hop]
    blocks[1:] += grains[:, hop:]
    out = out[hop:]
    return np.pad(out, (0, max(0, length - len(out))))[:length]


def voiced_mask(f0: np.ndarray, hop: int, length: int, fade: int) -> np.ndarray:
    """Per-sample weight of the vocoder (1 in voiced frames, 0 elsewhere) with ``fade``-sample ramps."""
    m = np.repeat((f0 > 0).astype(np.float64), hop)
    m = np.concatenate([np.full(hop // 2, m[0] if len(m) else 0.0), m])  # frame j is centred on sample j*hop
    m = np.pad(m, (0, max(0, length - len(m))), mode="edge")[:length]
    return np.convolve(m, np.ones(fade) / fade, mode="same") if fade > 1 else m


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
        cfg = self.config
        a = steady_envelope(analyse(wave, sample_rate), cfg)
        loud = _loudness_gain_db(a, cfg)
        effort, static = _effort_gain_db(a, cfg)
        sp = a.sp * 10 ** ((effort + loud[:, None]) / 10)
        pos = read_positions(a, cfg)
        retimed = _resample_frames(pos, _neutral_pitch(a, cfg), sp, _neutral_aperiodicity(a, cfg), sample_rate)
        voice = synthesize(retimed)
        # Consonants and pauses come from the input itself, retimed, level-matched and given the
        # utterance's static effort correction: the vocoder's noise excitation is where nearly all
        # of its loss of quality lies (DNSMOS OVRL of copy-synthesis 2.81, of this hybrid 3.01,
        # clean 3.03 on 27 held-out clips).
        hop = round(sample_rate * FRAME_PERIOD_MS / 1000)
        frames = np.arange(len(loud), dtype=np.float64)
        lift = np.interp(pos, frames, loud)
        gain = 10 ** (np.where(lift > 0, cfg.consonant_boost * lift, lift) / 20)
        copy = overlap_add_copy(equalize(wave.astype(np.float64), static), pos, hop, len(voice))
        copy *= np.interp(np.arange(len(voice)) / hop, np.arange(len(pos)), gain)
        # The new pitch keeps the input's voicing, so the retimed F0 marks where the vocoder speaks.
        mask = voiced_mask(retimed.f0, hop, len(voice), round(sample_rate * CROSSFADE_S))
        out = (mask * voice + (1 - mask) * copy).astype(np.float32)
        return normalize_level(out) if cfg.strength > 0 else _match_level(out, wave)


def _match_level(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Give ``out`` the RMS of ``ref`` (strength 0: the vocoder alone, at the input's level)."""
    r_out = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    r_ref = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    return (out * (r_ref / r_out)).astype(np.float32) if r_out > 0 else out
