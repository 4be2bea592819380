import math

import pytest
import torch

from cloak.features import (HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, LogMel, hz_to_mel, mel_filterbank, mel_to_hz,
                            normalize, num_frames)


def textbook_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def test_mel_scale_known_values():
    assert float(hz_to_mel(1000.0)) == pytest.approx(999.9855, abs=1e-3)
    assert float(hz_to_mel(700.0)) == pytest.approx(2595.0 * math.log10(2.0))
    assert float(mel_to_hz(hz_to_mel(4321.0))) == pytest.approx(4321.0)


def test_filterbank_hand_computed_single_filter():
    # 5 bins at 0, 2, 4, 6, 8 kHz; one filter with corners 0, mid-mel, 8 kHz.
    fb = mel_filterbank(n_freqs=5, n_mels=1, sample_rate=16000)
    center = 700.0 * (10 ** (textbook_mel(8000.0) / 2 / 2595.0) - 1.0)
    assert center == pytest.approx(1767.9, abs=0.5)
    expected = [0.0, (8000 - 2000) / (8000 - center), (8000 - 4000) / (8000 - center), (8000 - 6000) / (8000 - center), 0.0]
    assert fb[:, 0].tolist() == pytest.approx(expected, abs=1e-6)


def test_filterbank_shape_peaks_and_partition_of_unity():
    fb = mel_filterbank(n_freqs=N_FFT // 2 + 1, n_mels=N_MELS, sample_rate=SAMPLE_RATE)
    assert fb.shape == (257, 64)
    assert (fb >= 0).all() and fb.max() <= 1.0
    freqs = torch.linspace(0, SAMPLE_RATE / 2, 257)
    mels = torch.linspace(0, textbook_mel(SAMPLE_RATE / 2), N_MELS + 2)
    centers = 700.0 * (10 ** (mels[1:-1] / 2595.0) - 1.0)
    # every filter peaks at the FFT bin nearest its centre frequency
    nearest = (freqs[:, None] - centers[None]).abs().argmin(0)
    assert torch.equal(fb.argmax(0), nearest)
    # adjacent triangles overlap so that, between the first and last centre, weights sum to 1
    inside = (freqs >= centers[0]) & (freqs <= centers[-1])
    assert torch.allclose(fb[inside].sum(1), torch.ones(int(inside.sum())), atol=1e-5)


def test_filterbank_rejects_bad_range():
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(n_freqs=257, n_mels=64, sample_rate=16000, f_max=9000)


def test_logmel_shape_and_frame_count():
    wave = torch.randn(2, 16000) * 0.1
    out = LogMel()(wave)
    assert out.shape == (2, N_MELS, num_frames(16000)) == (2, 64, 101)
    assert num_frames(16000) == 1 + 16000 // HOP_LENGTH


def test_batched_equals_one_by_one():
    front = LogMel()
    wave = torch.randn(3, 8000) * 0.1
    batched = front(wave)
    for i in range(3):
        assert torch.allclose(batched[i], front(wave[i:i + 1])[0], atol=1e-5)


def test_sine_energy_lands_in_the_right_band():
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    wave = (0.5 * torch.sin(2 * math.pi * 1000.0 * t))[None]
    logmel = LogMel().log_mel(wave)[0].mean(-1)
    fb = mel_filterbank(n_freqs=257, n_mels=N_MELS, sample_rate=SAMPLE_RATE)
    assert int(logmel.argmax()) in {int(fb[32].argmax()), int(fb[31:34].sum(0).argmax())}  # bin 32 = 1000 Hz


def test_gradients_reach_waveform_and_stay_finite_on_silence():
    front = LogMel()
    for wave in (torch.zeros(1, 16000), torch.randn(1, 16000) * 0.1):
        wave.requires_grad_(True)
        (grad,) = torch.autograd.grad(front(wave).square().sum(), wave)
        assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


def test_gradcheck_float64():
    front = LogMel().double()
    wave = (torch.randn(1, 800, dtype=torch.float64) * 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w: front(w).sum(-1), (wave,), eps=1e-6, atol=1e-4)


def test_normalize_is_gain_invariant():
    front = LogMel().double()
    wave = torch.randn(1, 16000, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.05
    # exact up to the 1e-6 log floor, which matters only in the quietest band (~5e-4 here)
    assert torch.allclose(front(wave), front(wave * 4.0), atol=2e-3)
    assert not torch.allclose(front.log_mel(wave), front.log_mel(wave * 4.0), atol=1.0)
    z = normalize(front.log_mel(wave))
    assert torch.allclose(z.mean(-1), torch.zeros(1, 64, dtype=torch.float64), atol=1e-6)
