"""Shared parts of the torch judges: spectral front ends, masked batching, one training recipe.

The front ends are the judges' own (a Slaney-style mel scale, Hann windows, per-band CMVN),
deliberately unlike the cloak's surrogate front end, which the judges never import.
A front end maps one clip ``(time,)`` to features ``(channels, frames)``; a net maps a
zero-padded batch ``(batch, channels, frames)`` plus the true lengths ``(batch,)`` to logits.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import CORPORA, corpus_clips, read_wave
from .store import JudgeError, load_torch, save_torch

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000


# --- front ends -----------------------------------------------------------------------------

def hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (3 per 200 Hz) below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    log_part = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f < 1000.0, 3.0 * f / 200.0, log_part)


def mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0))


@functools.lru_cache(maxsize=8)
def slaney_filterbank(n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Area-normalized triangular filters on Slaney's mel scale, ``(n_mels, n_fft // 2 + 1)``."""
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, n_fft // 2 + 1)
    corners = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(f_min), hz_to_mel_slaney(f_max), n_mels + 2))
    lo, mid, hi = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    tri = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return torch.from_numpy((tri * (2.0 / (hi - lo))).astype(np.float32))


def log_mel(wave: np.ndarray, *, n_fft: int, hop: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """``(n_mels, frames)`` natural-log mel power with a Hann window of ``n_fft`` samples."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft), center=True,
                      pad_mode="reflect", return_complex=True).abs() ** 2
    return torch.log(slaney_filterbank(n_fft, n_mels, f_min, f_max) @ spec + 1e-8)


def cmvn(x: torch.Tensor) -> torch.Tensor:
    """Per-band mean and variance normalization over the frames of one clip ``(bands, frames)``."""
    return (x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True, unbiased=False) + 1e-5)


@functools.lru_cache(maxsize=4)
def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II, ``(n_out, n_in)``: log-mel -> cepstrum."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return torch.from_numpy(m.astype(np.float32))


def deltas(x: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Regression deltas over ``±width`` frames of ``(channels, frames)``, edges repeated."""
    padded = torch.nn.functional.pad(x[None], (width, width), mode="replicate")[0]
    n = x.shape[1]
    num = sum(k * (padded[:, width + k:width + k + n] - padded[:, width - k:width - k + n]) for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


# --- batching and the judge -----------------------------------------------------------------

def pad_batch(feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded ``(batch, channels, max_frames)`` and lengths ``(batch,)``."""
    lengths = torch.tensor([f.shape[1] for f in feats])
    out = torch.zeros(len(feats), feats[0].shape[0], int(lengths.max()))
    for i, f in enumerate(feats):
        out[i, :, : f.shape[1]] = f
    return out, lengths


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``(batch, frames)`` True where a frame holds audio."""
    return torch.arange(frames)[None, :] < lengths[:, None]


def masked_mean_std(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean and std over the valid frames of ``(batch, channels, frames)``: ``(batch, 2 * channels)``."""
    m = frame_mask(lengths, x.shape[-1]).to(x.dtype)[:, None, :]
    n = m.sum(-1).clamp(min=1.0)
    mean = (x * m).sum(-1) / n
    var = (((x - mean[..., None]) ** 2) * m).sum(-1) / n
    return torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=1)


class TorchJudge:
    """A front end ``(time,) -> (channels, frames)`` and a net on padded batches."""

    batch_size = 16

    def __init__(self, name: str, family: str, corpus: str, front: Callable[[np.ndarray], torch.Tensor],
                 net: nn.Module, meta: dict):
        self.name, self.family, self.corpus = name, family, corpus
        self.classes = CORPORA[corpus]
        self.front = front
        self.net = net.eval()
        self.meta = meta

    @torch.no_grad()
    def predict_proba(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        from . import check_waves

        waves = check_waves(waves)
        out = [np.zeros((0, len(self.classes)))]
        for i in range(0, len(waves), self.batch_size):
            x, lengths = pad_batch([self.front(w) for w in waves[i:i + self.batch_size]])
            out.append(torch.softmax(self.net(x, lengths), dim=-1).double().numpy())
        return np.concatenate(out)


def load_torch_judge(path: Path, name: str, family: str, corpus: str,
                     front: Callable[[np.ndarray], torch.Tensor], make_net: Callable[[dict], nn.Module]) -> TorchJudge:
    """A :class:`TorchJudge` from a verified checkpoint written by :func:`train_torch_judge`."""
    state, meta = load_torch(path)
    if meta.get("name") != name:
        raise JudgeError(f"{path}: holds judge {meta.get('name')!r}, not {name!r}")
    net = make_net(meta["config"])
    net.load_state_dict(state)
    return TorchJudge(name, family, corpus, front, net, meta)


# --- training -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """How a torch judge is trained: AdamW + one-cycle, random crops, masking, label smoothing."""

    epochs: int = 40
    batch_size: int = 32
    crop_frames: int = 200
    lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    time_masks: int = 2  # SpecAugment-style masks per clip, up to ``mask_width`` frames/channels each
    freq_masks: int = 2
    mask_width: int = 8
    seed: int = 0


def _augment(x: torch.Tensor, r: Recipe, g: torch.Generator) -> torch.Tensor:
    x = x.clone()
    channels, frames = x.shape
    for _ in range(r.freq_masks):
        w = int(torch.randint(0, r.mask_width + 1, (1,), generator=g))
        s = int(torch.randint(0, max(channels - w, 1), (1,), generator=g))
        x[s:s + w] = 0.0
    for _ in range(r.time_masks):
        w = int(torch.randint(0, r.mask_width + 1, (1,), generator=g))
        s = int(torch.randint(0, max(frames - w, 1), (1,), generator=g))
        x[:, s:s + w] = 0.0
    return x


def fit_net(net: nn.Module, feats: Sequence[torch.Tensor], labels: np.ndarray, n_classes: int, r: Recipe) -> nn.Module:
    """Train ``net`` on whole-clip features with random crops; deterministic for a given ``r.seed``."""
    torch.manual_seed(r.seed)
    g = torch.Generator().manual_seed(r.seed)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    counts = torch.bincount(y, minlength=n_classes).double()
    weight = (len(y) / (n_classes * counts.clamp(min=1))).float()
    steps_per_epoch = -(-len(feats) // r.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr, total_steps=r.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=r.label_smoothing)
    for epoch in range(r.epochs):
        net.train()
        order = torch.randperm(len(feats), generator=g)
        total, t0 = 0.0, time.perf_counter()
        for i in range(0, len(order), r.batch_size):
            idx = order[i:i + r.batch_size]
            crops = []
            for j in idx.tolist():
                f = feats[j]
                start = int(torch.randint(0, max(f.shape[1] - r.crop_frames, 0) + 1, (1,), generator=g))
                crops.append(_augment(f[:, start:start + r.crop_frames], r, g))
            x, lengths = pad_batch(crops)
            loss = loss_fn(net(x, lengths), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        log.info("epoch %d: loss %.3f (%.1f s)", epoch + 1, total / len(feats), time.perf_counter() - t0)
    return net.eval()


def train_torch_judge(path: Path, name: str, family: str, corpus: str, front: Callable[[np.ndarray], torch.Tensor],
                      make_net: Callable[[dict], nn.Module], config: dict, recipe: Recipe) -> dict:
    """Train on the corpus' training speakers, score the held-out ones, save weights + metadata."""
    from dataclasses import asdict

    from . import evaluate

    train, held = corpus_clips(corpus)
    n_classes = len(CORPORA[corpus])
    torch.manual_seed(recipe.seed)
    net = make_net(config)
    t0 = time.perf_counter()
    fit_net(net, [front(read_wave(c.path)) for c in train], np.array([c.label for c in train]), n_classes, recipe)
    meta = {"name": name, "family": family, "corpus": corpus, "classes": list(CORPORA[corpus]),
            "config": config, "recipe": asdict(recipe), "n_train": len(train),
            "train_speakers": sorted({c.speaker for c in train}),
            "parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": round(time.perf_counter() - t0, 1)}
    judge = TorchJudge(name, family, corpus, front, net, meta)
    meta["held_out"] = evaluate(judge, [read_wave(c.path) for c in held], [c.label for c in held])
    save_torch(path, net.state_dict(), meta)
    return meta
