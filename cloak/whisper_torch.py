"""Whisper base in torch, read from the bundled CTranslate2 weights: speech-to-text with gradients.

CTranslate2 computes without gradients; the words guard (:mod:`cloak.words`) needs to know how a
change to the audio moves Whisper's belief in the words. This module reads the bundled
``model.bin`` (CTranslate2's binary model spec, float16 weights) and runs the same network in
float32 (Radford et al. 2022):

- the log-mel front end: 25 ms Hann frames every 10 ms, 80 Slaney mel bands to 8 kHz, log10
  floored 8 below the clip's peak, scaled to about [-1, 1];
- the encoder: two convolutions (the second halves the frame rate), sinusoidal positions, six
  pre-norm transformer blocks;
- the decoder: learned positions, six blocks of causal self-attention, cross-attention to the
  encoder states and a GELU MLP; logits from the token embedding (tied).

Checked against CTranslate2 itself in ``tests/test_words.py``.
"""
from __future__ import annotations

import functools
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80
HEADS = 8
MAX_SECONDS = 30.0  # the encoder's 1500 positions
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ctranslate2(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin`` (spec version 6) by name, aliases resolved."""
    buf = memoryview(Path(path).read_bytes())
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, buf, offset)
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        n = take("H")  # length including the trailing NUL
        text = bytes(buf[offset:offset + n - 1]).decode()
        offset += n
        return text

    version = take("I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 model spec version {version}, this reader knows 6")
    string(), take("I")  # spec name, revision
    out: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype = np.dtype(_DTYPES[take("B")])
        nbytes = take("I")
        out[name] = np.frombuffer(buf, dtype, count=nbytes // dtype.itemsize, offset=offset).reshape(shape)
        offset += nbytes
    for _ in range(take("I")):
        alias, target = string(), string()
        out[alias] = out[target]
    return out


def _hz_to_slaney(f: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: linear to 1 kHz (15 mel), logarithmic above (27 mel per factor 6.4)."""
    step = 200.0 / 3
    log_part = 15.0 + torch.log(torch.clamp(f, min=1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return torch.where(f < 1000.0, f / step, log_part)


def _slaney_to_hz(m: torch.Tensor) -> torch.Tensor:
    step = 200.0 / 3
    return torch.where(m < 15.0, m * step, 1000.0 * torch.exp((m - 15.0) * (np.log(6.4) / 27.0)))


def slaney_mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """``(n_mels, n_fft // 2 + 1)`` triangles on Slaney's mel scale, each of unit area (Whisper's)."""
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = _slaney_to_hz(torch.linspace(0.0, float(_hz_to_slaney(torch.tensor(sample_rate / 2.0))),
                                         n_mels + 2, dtype=torch.float64))
    width = edges.diff()
    ramps = edges[:, None] - freqs[None, :]
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).float()


class WhisperTorch(nn.Module):
    """Whisper base: ``log_mel(wave) -> encode -> logits(tokens, states)``, all differentiable.

    >>> model = load_whisper_torch()
    >>> logits = model.logits(tokens, model.encode(model.log_mel(wave)))
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        for name, value in weights.items():
            if value.dtype == np.float16:
                self.register_buffer(name.replace("/", "__"), torch.from_numpy(value.astype(np.float32)))
        self.register_buffer("mel_filters", slaney_mel_filters())
        self.register_buffer("window", torch.hann_window(N_FFT))

    def _w(self, name: str) -> torch.Tensor:
        return getattr(self, name.replace("/", "__"))

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self._w(name + "/gamma"), self._w(name + "/beta"), 1e-5)

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self._w(name + "/weight"), self._w(name + "/bias"))

    @staticmethod
    def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
        b, t, d = q.shape
        split = lambda x: x.view(b, x.shape[1], HEADS, d // HEADS).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=causal)
        return out.transpose(1, 2).reshape(b, t, d)

    def _mlp(self, x: torch.Tensor, name: str) -> torch.Tensor:
        h = self._norm(x, name + "/layer_norm")
        return x + self._linear(F.gelu(self._linear(h, name + "/linear_0")), name + "/linear_1")

    def _self_attention(self, x: torch.Tensor, name: str, causal: bool) -> torch.Tensor:
        q, k, v = self._linear(self._norm(x, name + "/layer_norm"), name + "/linear_0").chunk(3, dim=-1)
        return x + self._linear(self._attend(q, k, v, causal), name + "/linear_1")

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` at 16 kHz -> ``(batch, 80, samples // 160 + 1)`` as faster-whisper computes it."""
        spec = torch.stft(F.pad(wave, (0, HOP)), N_FFT, HOP, window=self.window, return_complex=True)
        power = spec[..., :-1].abs() ** 2
        logmel = torch.clamp(self.mel_filters @ power, min=1e-10).log10()
        logmel = torch.maximum(logmel, logmel.amax(dim=(-2, -1), keepdim=True) - 8.0)
        return (logmel + 4.0) / 4.0

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """``(batch, 80, frames)`` (an even count, at most 3000) -> states ``(batch, frames // 2, 512)``."""
        x = F.gelu(F.conv1d(mel, self._w("encoder/conv1/weight"), self._w("encoder/conv1/bias"), padding=1))
        x = F.gelu(F.conv1d(x, self._w("encoder/conv2/weight"), self._w("encoder/conv2/bias"), stride=2, padding=1))
        x = x.transpose(1, 2) + self._w("encoder/position_encodings/encodings")[: x.shape[-1]]
        for i in range(6):
            x = self._mlp(self._self_attention(x, f"encoder/layer_{i}/self_attention", False), f"encoder/layer_{i}/ffn")
        return self._norm(x, "encoder/layer_norm")

    def logits(self, tokens: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(batch, n, vocab)`` for ``tokens`` ``(batch, n)`` given encoder ``states``."""
        embed = self._w("decoder/embeddings/weight")
        x = embed[tokens] + self._w("decoder/position_encodings/encodings")[: tokens.shape[1]]
        for i in range(6):
            p = f"decoder/layer_{i}"
            x = self._self_attention(x, p + "/self_attention", True)
            q = self._linear(self._norm(x, p + "/attention/layer_norm"), p + "/attention/linear_0")
            k, v = self._linear(states, p + "/attention/linear_1").chunk(2, dim=-1)
            x = self._mlp(x + self._linear(self._attend(q, k, v), p + "/attention/linear_2"), p + "/ffn")
        return self._norm(x, "decoder/layer_norm") @ embed.T


@functools.lru_cache(maxsize=1)
def load_whisper_torch(model_dir: Path | None = None) -> WhisperTorch:
    """The bundled Whisper base (or the CTranslate2 folder ``model_dir``) in torch, on the CPU, eval mode."""
    from cloak.whisper_bundle import bundled_model_dir

    folder = Path(model_dir) if model_dir else bundled_model_dir()
    return WhisperTorch(read_ctranslate2(folder / "model.bin")).eval()
