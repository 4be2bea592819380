"""``ravdess-mfcc``: a dilated 1-D CNN on MFCCs + deltas, trained on RAVDESS actors 01-16 (8 classes).

Another corpus (English, North American actors) and another family: 20 MFCCs from 64
Slaney-scale mel bands (25 ms Hann window, 10 ms hop) with first and second deltas, each
normalized per clip, then three dilated temporal convolutions and mean+std pooling.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .nets import Recipe, TorchJudge, cmvn, dct_matrix, deltas, load_torch_judge, log_mel, masked_mean_std, \
    train_torch_judge

FAMILY = "dilated 1-D CNN + mean/std pooling on 20 MFCC + deltas (64 Slaney mels, 25 ms Hann / 10 ms), per-clip CMVN"
CONFIG = {"n_mels": 64, "n_mfcc": 20, "channels": [64, 64, 128], "dropout": 0.3, "n_classes": 8}
RECIPE = Recipe(epochs=40, batch_size=32, crop_frames=250, lr=3e-3, freq_masks=0)  # 250 frames = 2.5 s


def front(wave: np.ndarray) -> torch.Tensor:
    """``(60, frames)``: MFCC, delta and delta-delta, each channel normalized over the clip."""
    mel = log_mel(wave, n_fft=400, hop=160, n_mels=CONFIG["n_mels"], f_min=20.0, f_max=8000.0)
    c = dct_matrix(CONFIG["n_mels"], CONFIG["n_mfcc"]) @ mel
    d = deltas(c)
    return cmvn(torch.cat([c, d, deltas(d)]))


class MFCCNet(nn.Module):
    """Three conv blocks (kernel 5, 5, 3; dilation 1, 2, 4) masked to the clip, then mean+std and a linear head."""

    def __init__(self, config: dict):
        super().__init__()
        chans = [3 * config["n_mfcc"], *config["channels"]]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(a, b, k, padding=d * (k - 1) // 2, dilation=d, bias=False), nn.BatchNorm1d(b), nn.ReLU())
            for a, b, k, d in zip(chans[:-1], chans[1:], (5, 5, 3), (1, 2, 4)))
        self.head = nn.Sequential(nn.Dropout(config["dropout"]), nn.Linear(2 * chans[-1], config["n_classes"]))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, 60, frames)`` zero-padded, ``(batch,)`` lengths -> ``(batch, 8)`` logits."""
        m = (torch.arange(x.shape[-1])[None, :] < lengths[:, None]).to(x.dtype)[:, None, :]
        x = x * m
        for block in self.blocks:
            x = block(x) * m  # padding stays zero, so batching changes nothing
        return self.head(masked_mean_std(x, lengths))


def load(path: Path, name: str, corpus: str) -> TorchJudge:
    return load_torch_judge(path, name, FAMILY, corpus, front, MFCCNet)


def train(path: Path, name: str, corpus: str) -> dict:
    return train_torch_judge(path, name, FAMILY, corpus, front, MFCCNet, CONFIG, RECIPE)
