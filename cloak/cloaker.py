"""The product: cloak a recording against emotion recognizers, keeping its words and quality.

The perturbation is computed at 16 kHz mono through the differentiable front end, bounded
per sample by the local speech level (so pauses stay clean and the noise hides under the
voice), then resampled to the file's rate and added to every channel: content above 8 kHz
is untouched. Long recordings are cut into overlapping windows that are attacked in
batches and cross-faded, so memory stays bounded and the joins are seamless.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from cloak.attacks import OBJECTIVES, IterativeFGSM
from cloak.audio import AudioError, check_wave, resample, to_model_rate
from cloak.emodb import EMOTIONS
from cloak.features import HOP_LENGTH, SAMPLE_RATE
from cloak.words import Encoded, GuardSettings, Transcript, WordsGuard

ENVELOPE_SMOOTHING = 5  # frames (10 ms each) of moving-max over the frame RMS: covers attacks and onsets
Progress = Callable[[int, int], None]  # (steps done, steps total); may raise to cancel


@dataclass(frozen=True)
class CloakConfig(GuardSettings):
    """How strongly to cloak.

    The budget is an L-inf ball whose radius follows the local RMS of the speech:
    ``|delta(t)| <= min(10**(-snr_db/20) * envelope(t), epsilon)``. Once the attack saturates
    it, the achieved SNR is close to ``snr_db``. ``epsilon`` (full-scale amplitude) optionally
    caps it everywhere; ``min_snr_db`` is a hard floor: the perturbation is scaled down to meet it.
    The words guard (:class:`cloak.words.GuardSettings`, off by default) reads a guarded piece as
    one window of at most 30 s.
    """

    steps: int = 10
    snr_db: float = 35.0
    epsilon: float | None = None
    min_snr_db: float | None = None
    alpha: float | None = None  # step size as a fraction of the budget; default 2.5 / steps
    objective: str = "topk"
    window_s: float = 8.0
    overlap_s: float = 1.0
    batch_windows: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if not 0 < self.snr_db < 120:
            raise ValueError(f"snr_db must be in (0, 120) dB, got {self.snr_db}")
        if self.epsilon is not None and not 0 < self.epsilon <= 1:
            raise ValueError(f"epsilon must be in (0, 1] (full-scale amplitude), got {self.epsilon}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}")
        if not 0 <= self.overlap_s < self.window_s / 2:
            raise ValueError(f"need 0 <= overlap_s < window_s / 2, got {self.overlap_s}, {self.window_s}")

    @property
    def crafts(self) -> bool:
        """Whether any attack step runs."""
        return self.steps > 0

    @property
    def step_size(self) -> float:
        return self.alpha if self.alpha is not None else 2.5 / max(self.steps, 1)


STRENGTHS: dict[str, CloakConfig] = {
    "low": CloakConfig(steps=5, snr_db=40.0),
    "medium": CloakConfig(steps=10, snr_db=35.0),
    "high": CloakConfig(steps=20, snr_db=30.0),
}
DEFAULT_STRENGTH = "medium"


@dataclass
class CloakReport:
    """What happened to one recording."""

    duration_s: float
    steps: int
    snr_db: float
    probs_before: dict[str, float] = field(default_factory=dict)
    probs_after: dict[str, float] = field(default_factory=dict)
    mode: str = "subtle"
    duration_out_s: float | None = None  # set when the mode changes the timing

    @property
    def emotion_before(self) -> str:
        return max(self.probs_before, key=self.probs_before.get)

    @property
    def emotion_after(self) -> str:
        return max(self.probs_after, key=self.probs_after.get)


def frame_envelope(wave: np.ndarray) -> np.ndarray:
    """Local level: RMS per 10 ms hop, moving max over :data:`ENVELOPE_SMOOTHING` hops."""
    n_frames = -(-len(wave) // HOP_LENGTH)
    padded = np.zeros(n_frames * HOP_LENGTH, dtype=np.float32)
    padded[: len(wave)] = wave
    rms = np.sqrt(np.mean(padded.reshape(n_frames, HOP_LENGTH) ** 2, axis=1))
    k = ENVELOPE_SMOOTHING
    ext = np.pad(rms, (k // 2, k // 2), mode="edge")
    return np.lib.stride_tricks.sliding_window_view(ext, k).max(axis=1).astype(np.float32)


def window_starts(n: int, window: int, overlap: int) -> list[int]:
    """Evenly spaced window starts covering ``n`` samples with at least ``overlap`` shared."""
    if n <= window:
        return [0]
    k = math.ceil((n - window) / (window - overlap))
    return [round(i * (n - window) / k) for i in range(k + 1)]


def fade_weights(length: int, ramp_in: int, ramp_out: int) -> np.ndarray:
    w = np.ones(length, dtype=np.float32)
    if ramp_in:
        w[:ramp_in] = (np.arange(ramp_in) + 0.5) / ramp_in
    if ramp_out:
        w[length - ramp_out:] = np.minimum(w[length - ramp_out:], ((np.arange(ramp_out) + 0.5) / ramp_out)[::-1])
    return w


def energy(x: np.ndarray, chunk: int = 1 << 20) -> float:
    """Sum of squares accumulated in float64, a chunk at a time (no full-length float64 copy)."""
    flat = x.reshape(-1)
    return float(sum(np.dot(c, c) for c in (flat[i:i + chunk].astype(np.float64) for i in range(0, len(flat), chunk))))


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """``10 log10(sum signal^2 / sum noise^2)``; inf when the noise is zero."""
    p_noise = energy(noise)
    return math.inf if p_noise == 0 else 10.0 * math.log10(max(energy(signal), 1e-30) / p_noise)


class Cloaker:
    """Compute and apply an emotion-cloaking perturbation.

    >>> cloaked, report = Cloaker(load_recognizer()).cloak(wave, sample_rate)
    """

    def __init__(self, model: nn.Module, config: CloakConfig = STRENGTHS[DEFAULT_STRENGTH],
                 device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = config
        self.device = torch.device(device)
        self.guard = WordsGuard(config.language, device) if config.guarded else None

    def with_config(self, **changes) -> Cloaker:
        """A cloaker sharing this model, with some settings changed."""
        return Cloaker(self.model, replace(self.config, **changes), self.device)

    def _bound(self, env: np.ndarray, start: int, length: int) -> np.ndarray:
        """Per-sample budget for ``[start, start + length)`` from the frame envelope."""
        t = (np.arange(start, start + length) + 0.5) / HOP_LENGTH - 0.5
        b = np.interp(t, np.arange(len(env)), env).astype(np.float32) * 10 ** (-self.config.snr_db / 20)
        return b if self.config.epsilon is None else np.minimum(b, self.config.epsilon)

    def budget(self, wave: np.ndarray) -> np.ndarray:
        """The per-sample L-inf budget for a whole 16 kHz mono ``wave``."""
        return self._bound(frame_envelope(wave), 0, len(wave))

    def _probs(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self.model(batch), -1)

    def perturbation(self, wave: np.ndarray, progress: Progress | None = None, words: Transcript | None = None,
                     begun: Encoded | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``wave`` (16 kHz mono float32) -> (delta, probs before, probs after) as numpy arrays.

        ``words``: what the guard keeps (:meth:`cloak.words.WordsGuard.transcript` of the clean piece),
        when it is on; ``wave`` is then one window. ``begun``: the guard's first pass at ``wave``, begun
        by :meth:`begin_guard` while the words were still being transcribed."""
        cfg = self.config
        n = len(wave)
        guarded = words is not None and self.guard is not None
        win = n if guarded else min(n, round(cfg.window_s * SAMPLE_RATE))
        overlap = round(cfg.overlap_s * SAMPLE_RATE)
        starts = window_starts(n, win, overlap)
        env = frame_envelope(wave)
        # Float audio may exceed full scale: the model sees it scaled into [-1, 1] (its front end
        # is gain-invariant), never clipped, and the perturbation is scaled back to the file's level.
        gain = _gain(wave)
        attack = IterativeFGSM(self.model, steps=cfg.steps, alpha=cfg.step_size, objective=OBJECTIVES[cfg.objective])
        num = np.zeros(n, dtype=np.float32)
        den = np.zeros(n, dtype=np.float32)
        before = torch.zeros(len(EMOTIONS))
        total = cfg.steps * math.ceil(len(starts) / cfg.batch_windows)
        for b0 in range(0, len(starts), cfg.batch_windows):
            chunk = starts[b0:b0 + cfg.batch_windows]
            x = torch.from_numpy(np.stack([wave[s:s + win] * gain for s in chunk])).to(self.device)
            bound = torch.from_numpy(np.stack([self._bound(env, s, win) * gain for s in chunk])).to(self.device)
            clean = self._probs(x)
            before += clean.sum(0).cpu()
            done = cfg.steps * (b0 // cfg.batch_windows)
            step_cb = (lambda s, done=done: progress(done + s, total)) if progress else None
            keep = (lambda adv: self._keep(adv[0], words, begun)) if guarded else None
            delta = attack(x, bound, clean_probs=clean, callback=step_cb, keep=keep, keep_weight=cfg.words,
                           keep_every=cfg.words_every)
            delta = (delta - x).cpu().numpy()
            for s, d in zip(chunk, delta):
                w = fade_weights(win, overlap if s > 0 else 0, overlap if s + win < n else 0)
                num[s:s + win] += w * d
                den[s:s + win] += w
        np.divide(num, den, out=num)
        num /= gain
        delta = self.apply_floor(wave, num)
        after = torch.zeros(len(EMOTIONS))
        for b0 in range(0, len(starts), cfg.batch_windows):
            chunk = starts[b0:b0 + cfg.batch_windows]
            x = torch.from_numpy(np.stack([(wave[s:s + win] + delta[s:s + win]) * gain for s in chunk])).to(self.device)
            after += self._probs(x.clamp(-1, 1)).sum(0).cpu()  # as written: integer formats clip at full scale
        return delta, (before / len(starts)).numpy(), (after / len(starts)).numpy()

    def begin_guard(self, wave: np.ndarray, threads: int | None = None) -> Encoded:
        """The words guard's first pass at a guarded ``wave`` (as :meth:`perturbation` takes it), begun
        before its words are known: the encoder's half (on ``threads``, default the guard's)."""
        assert self.guard is not None
        return self.guard.encode(torch.from_numpy(wave * _gain(wave)).to(self.device), threads)

    def _keep(self, x: torch.Tensor, words: Transcript, begun: Encoded | None = None) -> torch.Tensor:
        """The words guard's gradient at ``x`` ``(samples,)``: ``(1, samples)``; finishes ``begun`` if it began at ``x``."""
        if begun is None or not torch.equal(begun.wave, x):
            begun = self.guard.encode(x)
        return self.guard.gradient(begun, words)[None]

    def apply_floor(self, wave: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Scale ``delta`` down (in place) so that its SNR against ``wave`` meets ``min_snr_db``."""
        floor = self.config.min_snr_db
        achieved = snr_db(wave, delta)
        if floor is not None and achieved < floor:
            delta *= 10 ** ((achieved - floor) / 20)
        return delta

    def cloak(self, wave: np.ndarray, sample_rate: int, progress: Progress | None = None,
              ) -> tuple[np.ndarray, CloakReport]:
        """Cloak ``wave`` (``(frames,)`` or ``(frames, channels)``, any rate) in memory.

        Returns the cloaked audio with the input's shape and rate as float32, unclipped (float
        audio may exceed full scale; :func:`cloak.audio.write_audio` clips integer formats), and
        a :class:`CloakReport`.
        """
        data = wave if wave.ndim == 2 else wave[:, None]
        check_wave(data, sample_rate)
        mono16 = to_model_rate(data, sample_rate, SAMPLE_RATE)
        delta16, before, after = self.perturbation(mono16, progress)
        delta = fit_length(resample(delta16, SAMPLE_RATE, sample_rate), data.shape[0])
        out = (data + delta[:, None]).astype(np.float32)
        report = make_report(data.shape[0] / sample_rate, self.config.steps, snr_db(data, out - data), before, after)
        return (out if wave.ndim == 2 else out[:, 0]), report


def _gain(wave: np.ndarray) -> np.float32:
    """What brings float audio beyond full scale into [-1, 1] for the model (its front end is gain-invariant)."""
    peak = float(np.abs(wave).max(initial=0.0))
    return np.float32(1.0 / peak if peak > 1.0 else 1.0)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``x`` along axis 0 to ``n`` (resampling may be off by a sample)."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros((n - len(x), *x.shape[1:]), dtype=x.dtype)])


def make_report(duration_s: float, steps: int, snr: float, before: np.ndarray, after: np.ndarray) -> CloakReport:
    """A :class:`CloakReport` with named probabilities."""
    name = lambda p: {e: float(v) for e, v in zip(EMOTIONS, p)}  # noqa: E731
    return CloakReport(duration_s, steps, snr, name(before), name(after))


__all__ = ["AudioError", "CloakConfig", "CloakReport", "Cloaker", "STRENGTHS", "DEFAULT_STRENGTH", "snr_db"]
