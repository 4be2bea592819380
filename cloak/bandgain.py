"""A smooth adversarial stage: a slowly moving equalizer crafted against the surrogate.

Sample-level noise fools only recognizers like the one it was crafted on (README: the subtle
mode). This stage perturbs a smooth, perceptually natural parameter instead: the gain of each of
``bands`` mel-spaced frequency bands, set every ``control_s`` seconds and interpolated between,
bounded to +-``max_gain_db``. The gains act on the STFT of the 16 kHz audio (a zero-phase filter
that changes with time), so nothing is added in pauses and the waveform keeps its phase.

The gains are crafted by iterative sign steps with momentum (MI-FGSM, Dong et al. 2018) on the
surrogate's top-k objective, from zero. With ``crafted=False`` every gain is set to +-``max_gain_db``
with a random sign instead: the control that tells the crafted direction from the mere size of
the change (README: the band-gain stage).

With ``words > 0`` the words guard (:mod:`cloak.words`) joins the crafting: each step also descends
Whisper's cross-entropy of the clean recording's transcript, weighted ``words`` against the
surrogate's gradient (each normalized to unit mean magnitude), so the equalizer moves the emotion
and not the words. The guard reads a whole piece at once (at most 30 s), so guarded pieces are
one window.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cloak.attacks import OBJECTIVES
from cloak.cloaker import fade_weights, window_starts
from cloak.features import SAMPLE_RATE, hz_to_mel, mel_to_hz
from cloak.words import GuardSettings, Transcript, WordsGuard

N_FFT = 512  # 32 ms frames at 16 kHz ...
HOP = 128  # ... every 8 ms: fine enough to follow the gain curves without smearing them
F_LOW, F_HIGH = 50.0, 7800.0  # band centres span the speech band
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BandGainConfig(GuardSettings):
    """How the equalizer may move: ``max_gain_db`` per band, ``bands`` mel-spaced bands, a control
    point every ``control_s`` seconds; ``steps`` sign steps with ``momentum`` on ``objective`` (a name
    in :data:`cloak.attacks.OBJECTIVES`); ``crafted=False``: random signs drawn with ``seed`` (the
    control); windows of ``window_s`` seconds overlapping by ``overlap_s`` for long recordings.
    The words guard (:class:`cloak.words.GuardSettings`) is on by default."""

    max_gain_db: float = 3.0
    bands: int = 16
    control_s: float = 0.04
    steps: int = 10
    momentum: float = 0.9
    objective: str = "topk"
    crafted: bool = True
    seed: int = 0
    window_s: float = 8.0
    overlap_s: float = 1.0
    words: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.max_gain_db <= 12:
            raise ValueError(f"max_gain_db must be in (0, 12] dB, got {self.max_gain_db}")
        if not 2 <= self.bands <= 64:
            raise ValueError(f"bands must be in [2, 64], got {self.bands}")
        if not 0.01 <= self.control_s <= 1.0:
            raise ValueError(f"control_s must be in [0.01, 1] seconds, got {self.control_s}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}")
        if not 0 <= self.overlap_s < self.window_s / 2:
            raise ValueError(f"need 0 <= overlap_s < window_s / 2, got {self.overlap_s}, {self.window_s}")

    @property
    def crafts(self) -> bool:
        """Whether the gains are crafted (the random control crafts nothing)."""
        return self.crafted


def _centres_mel(bands: int) -> torch.Tensor:
    return torch.linspace(float(hz_to_mel(F_LOW)), float(hz_to_mel(F_HIGH)), bands, dtype=torch.float64)


def band_weights(bands: int, n_freqs: int = N_FFT // 2 + 1, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """``(n_freqs, bands)`` weights spreading each band's gain over the STFT bins: triangles with
    centres equally spaced in mel from :data:`F_LOW` to :data:`F_HIGH`, each row summing to 1
    (bins beyond the outer centres follow the outer band)."""
    mel = hz_to_mel(torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64))
    centres = _centres_mel(bands)
    w = torch.clamp(1 - (mel[:, None] - centres[None, :]).abs() / (centres[1] - centres[0]), min=0.0)
    w[mel <= centres[0], 0] = 1.0
    w[mel >= centres[-1], -1] = 1.0
    return (w / w.sum(dim=1, keepdim=True)).float()


def band_centres_hz(bands: int) -> np.ndarray:
    """The centre frequency (Hz) of each band of :func:`band_weights`."""
    return mel_to_hz(_centres_mel(bands)).numpy()


class BandGain:
    """``wave16 -> wave16`` through a moving equalizer crafted to move the surrogate off its reading.

    >>> out = BandGain(load_recognizer())(wave16)
    """

    def __init__(self, model: nn.Module, config: BandGainConfig = BandGainConfig(),
                 device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = config
        self.device = torch.device(device)
        self.weights = band_weights(config.bands).to(self.device)
        self.window = torch.hann_window(N_FFT, device=self.device)
        self.guard = WordsGuard(config.language, device) if config.guarded else None

    def _apply(self, spec: torch.Tensor, gains_db: torch.Tensor, length: int) -> torch.Tensor:
        """Gains ``(bands, points)`` in dB, interpolated over the frames, applied to ``spec`` ``(bins, frames)``."""
        curves = torch.nn.functional.interpolate(gains_db[None], size=spec.shape[-1], mode="linear",
                                                 align_corners=True)[0]
        gain = 10 ** ((self.weights @ curves) / 20)
        return torch.istft(spec * gain, N_FFT, HOP, window=self.window, length=length)

    def _stft(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stft(x, N_FFT, HOP, window=self.window, return_complex=True)

    def gains(self, x: torch.Tensor, spec: torch.Tensor | None = None, words: Transcript | None = None) -> torch.Tensor:
        """The ``(bands, points)`` gains in dB for one window ``x`` ``(samples,)`` (``spec``: its STFT,
        if known; ``words``: what the guard keeps, if on)."""
        cfg = self.config
        spec = self._stft(x) if spec is None else spec
        points = max(2, int(np.ceil(len(x) / SAMPLE_RATE / cfg.control_s)) + 1)
        if not cfg.crafted:
            rng = np.random.default_rng(cfg.seed)
            signs = rng.choice([-1.0, 1.0], size=(cfg.bands, points))
            return torch.as_tensor(signs * cfg.max_gain_db, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            clean = torch.softmax(self.model(x[None]), -1)
        objective = OBJECTIVES[cfg.objective]
        g = torch.zeros(cfg.bands, points, device=self.device)
        velocity = torch.zeros_like(g)
        step = 2.5 / cfg.steps * cfg.max_gain_db
        keep = torch.zeros_like(g)
        for i in range(cfg.steps):
            g.requires_grad_(True)
            fresh = self.guard is not None and words is not None and i % cfg.words_every == 0
            with torch.enable_grad():  # also when called under no_grad
                y = self._apply(spec, g, len(x))
                loss = objective(self.model(y[None]), clean).sum()
                (grad,) = torch.autograd.grad(loss, g, retain_graph=fresh)
                if fresh:
                    with self.guard.working():
                        (keep,) = torch.autograd.grad(self.guard.loss(y, words), g)
                    keep = keep / (keep.abs().mean() + 1e-12)
            with torch.no_grad():
                grad = grad / (grad.abs().mean() + 1e-12) - cfg.words * keep
                velocity = cfg.momentum * velocity + grad / (grad.abs().mean() + 1e-12)
                g = (g + step * velocity.sign()).clamp(-cfg.max_gain_db, cfg.max_gain_db)
        return g.detach()

    def __call__(self, wave: np.ndarray, progress: Progress | None = None, words: Transcript | None = None,
                 ) -> np.ndarray:
        """``wave`` (16 kHz mono float32) through the crafted equalizer; windows are cross-faded.

        ``words``: what the guard keeps (:meth:`cloak.words.WordsGuard.transcript` of the clean
        piece); the piece is then one window."""
        cfg = self.config
        n = len(wave)
        if n < N_FFT:
            return wave.astype(np.float32)
        win = n if words is not None and self.guard is not None else min(n, round(cfg.window_s * SAMPLE_RATE))
        overlap = round(cfg.overlap_s * SAMPLE_RATE)
        starts = window_starts(n, win, overlap)
        num = np.zeros(n, dtype=np.float32)
        den = np.zeros(n, dtype=np.float32)
        for i, s in enumerate(starts):
            x = torch.from_numpy(np.ascontiguousarray(wave[s:s + win], dtype=np.float32)).to(self.device)
            spec = self._stft(x)
            g = self.gains(x, spec, words)
            with torch.no_grad():
                delta = (self._apply(spec, g, len(x)) - x).cpu().numpy()
            w = fade_weights(win, overlap if s > 0 else 0, overlap if s + win < n else 0)
            num[s:s + win] += w * delta
            den[s:s + win] += w
            if progress:
                progress(i + 1, len(starts))
        return (wave + num / den).astype(np.float32)
