"""The surrogate speech-emotion recognizer: a lean CNN on normalized log-mel spectrograms.

:class:`EmotionCNN` maps ``(batch, n_mels, frames)`` to 7 logits; :func:`build_recognizer`
puts the differentiable front end in front of it, so attacks work on waveforms
``(batch, time)`` in [-1, 1].
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from cloak.emodb import EMOTIONS
from cloak.features import N_MELS, LogMel

DEFAULT_MODEL = "emodb_cnn.pt"


class ModelError(ValueError):
    """A checkpoint that is missing, corrupt or does not match its recorded checksum."""


@dataclass(frozen=True)
class CNNConfig:
    """Architecture hyper-parameters, stored in every checkpoint."""

    n_mels: int = N_MELS
    channels: tuple[int, ...] = (16, 32, 64, 64)
    dropout: float = 0.3
    n_classes: int = len(EMOTIONS)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class EmotionCNN(nn.Module):
    """Conv blocks (3x3 conv, BN, ReLU, 2x2 max-pool) then mean+std pooling over time.

    Statistics pooling makes the output independent of clip length; an optional frame mask
    ``(batch, frames)`` keeps padding out of the statistics when clips are batched.
    """

    def __init__(self, config: CNNConfig = CNNConfig()) -> None:
        super().__init__()
        self.config = config
        chans = (1, *config.channels)
        self.features = nn.Sequential(*[_block(a, b) for a, b in zip(chans[:-1], chans[1:])])
        freq_out = config.n_mels // 2 ** len(config.channels)
        dim = config.channels[-1] * freq_out
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(2 * dim, config.n_classes))
        self.pool_factor = 2 ** len(config.channels)

    def forward(self, logmel: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.features(logmel.unsqueeze(1))  # (B, C, F', T')
        x = x.flatten(1, 2)  # (B, C*F', T')
        if mask is None:
            mean, std = x.mean(-1), x.std(-1, unbiased=False)
        else:
            m = mask[:, :: self.pool_factor][:, : x.shape[-1]].to(x.dtype).unsqueeze(1)
            n = m.sum(-1).clamp(min=1.0)
            mean = (x * m).sum(-1) / n
            std = ((((x - mean.unsqueeze(-1)) ** 2) * m).sum(-1) / n).clamp(min=1e-8).sqrt()
        return self.head(torch.cat([mean, std], dim=1))


def build_recognizer(cnn: EmotionCNN) -> nn.Sequential:
    """``Sequential(LogMel, cnn)``: waveform ``(batch, time)`` at 16 kHz -> logits ``(batch, 7)``."""
    return nn.Sequential(LogMel(cnn.config.n_mels), cnn)


def save_checkpoint(cnn: EmotionCNN, path: str | Path, meta: dict | None = None) -> str:
    """Save weights + config + metadata; returns the file's SHA-256 (also written to ``PATH.sha256``)."""
    path = Path(path)
    payload = {
        "state_dict": cnn.state_dict(),
        "config": json.dumps(asdict(cnn.config)),
        "meta": json.dumps(meta or {}),
    }
    tmp = path.with_suffix(path.suffix + ".part")
    torch.save(payload, tmp)
    tmp.replace(path)
    digest = sha256_file(path)
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return digest


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_model_path() -> Path:
    """The shipped checkpoint inside the installed ``cloak.models`` package."""
    return Path(str(resources.files("cloak.models") / DEFAULT_MODEL))


def load_checkpoint(path: str | Path | None = None) -> tuple[EmotionCNN, dict]:
    """Load a checkpoint safely (``weights_only=True``), verifying its ``.sha256`` when present."""
    path = Path(path) if path else default_model_path()
    if not path.is_file():
        raise ModelError(f"{path}: model checkpoint not found")
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().split()[0]
        if sha256_file(path) != expected:
            raise ModelError(f"{path}: checksum mismatch (file corrupt or replaced)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        config = json.loads(payload["config"])
        config["channels"] = tuple(config["channels"])
        cnn = EmotionCNN(CNNConfig(**config))
        cnn.load_state_dict(payload["state_dict"])
    except Exception as e:
        raise ModelError(f"{path}: not a cloak checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
    cnn.eval()
    return cnn, json.loads(payload.get("meta", "{}"))


def load_recognizer(path: str | Path | None = None, device: str | torch.device = "cpu") -> nn.Sequential:
    """The shipped (or given) checkpoint as an eval-mode waveform recognizer on ``device``."""
    cnn, _ = load_checkpoint(path)
    return build_recognizer(cnn).to(device).eval()
