"""``gru-mel``: conv front + bidirectional GRU + attention pooling on a 40-band log-mel with per-band CMVN.

Its analysis differs from the cloak's surrogate on every axis: 40 Slaney-scale mel bands
(50-7600 Hz, area-normalized) instead of 64 HTK bands, a 32 ms Hann window with a 16 ms hop
instead of 25 ms Hamming / 10 ms, per-band mean+variance normalization instead of band means,
and a recurrent instead of a 2-D convolutional model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .nets import Recipe, TorchJudge, cmvn, frame_mask, load_torch_judge, log_mel, train_torch_judge

FAMILY = "conv + bidirectional GRU + attention pooling on 40-band Slaney log-mel (32 ms Hann / 16 ms hop), per-band CMVN"
CONFIG = {"n_mels": 40, "conv": 64, "hidden": 64, "dropout": 0.3, "n_classes": 7}
RECIPE = Recipe(epochs=40, batch_size=32, crop_frames=160, lr=3e-3)  # 160 frames = 2.6 s


def front(wave: np.ndarray) -> torch.Tensor:
    """``(40, frames)`` per-band normalized log-mel, one frame per 16 ms."""
    return cmvn(log_mel(wave, n_fft=512, hop=256, n_mels=CONFIG["n_mels"], f_min=50.0, f_max=7600.0))


class GRUNet(nn.Module):
    """Two 1-D conv blocks over time, a bidirectional GRU, attention pooling, a linear head."""

    def __init__(self, config: dict):
        super().__init__()
        c, h = config["conv"], config["hidden"]
        self.conv1 = nn.Sequential(nn.Conv1d(config["n_mels"], c, 5, padding=2, bias=False), nn.BatchNorm1d(c), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv1d(c, c, 3, padding=1, bias=False), nn.BatchNorm1d(c), nn.ReLU())
        self.gru = nn.GRU(c, h, batch_first=True, bidirectional=True)
        self.attn = nn.Linear(2 * h, 1)
        self.head = nn.Sequential(nn.Dropout(config["dropout"]), nn.Linear(2 * h, config["n_classes"]))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, n_mels, frames)`` zero-padded, ``(batch,)`` lengths -> ``(batch, classes)`` logits."""
        mask = frame_mask(lengths, x.shape[-1])
        m = mask[:, None, :].to(x.dtype)
        x = self.conv2(self.conv1(x * m) * m) * m  # padding stays zero, so batching changes nothing
        packed = nn.utils.rnn.pack_padded_sequence(x.transpose(1, 2), lengths, batch_first=True, enforce_sorted=False)
        h, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[-1])
        scores = self.attn(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        pooled = (torch.softmax(scores, dim=1).unsqueeze(-1) * h).sum(dim=1)
        return self.head(pooled)


def load(path: Path, name: str, corpus: str) -> TorchJudge:
    return load_torch_judge(path, name, FAMILY, corpus, front, GRUNet)


def train(path: Path, name: str, corpus: str) -> dict:
    return train_torch_judge(path, name, FAMILY, corpus, front, GRUNet, CONFIG, RECIPE)
