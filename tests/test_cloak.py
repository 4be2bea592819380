"""The cloaking engine on real EmoDB audio: attacks, budget, formats, long files."""
import numpy as np
import pytest
import soundfile as sf
import torch

from cloak.attacks import IterativeFGSM, away_from_top_k
from cloak.cloaker import STRENGTHS, CloakConfig, Cloaker, snr_db, window_starts
from cloak.features import SAMPLE_RATE
from cloak.pipeline import cloak_file


@pytest.fixture(scope="module")
def cloaker(recognizer):
    return Cloaker(recognizer)


def top(model, wave):
    with torch.no_grad():
        return int(model(torch.from_numpy(wave)[None]).argmax())


def test_cloak_changes_the_emotion_and_keeps_snr(cloaker, recognizer, clip):
    wave, _ = clip
    out, report = cloaker.cloak(wave, SAMPLE_RATE)
    assert out.shape == wave.shape and out.dtype == np.float32
    assert top(recognizer, out) != top(recognizer, wave)
    assert report.emotion_after != report.emotion_before
    assert report.snr_db == pytest.approx(snr_db(wave, out - wave), abs=1e-3)
    assert report.snr_db >= STRENGTHS["medium"].snr_db - 1.0
    assert abs(sum(report.probs_after.values()) - 1) < 1e-4


def test_perturbation_respects_the_envelope_budget(cloaker, clip):
    wave, _ = clip
    delta, _, _ = cloaker.perturbation(wave)
    bound = cloaker.budget(wave)
    assert np.all(np.abs(delta) <= bound + 1e-6)
    quiet = bound < bound.max() * 0.01  # pauses get (almost) nothing
    assert np.abs(delta[quiet]).max() <= bound.max() * 0.01 + 1e-6


def test_epsilon_caps_and_snr_floor_holds(cloaker, clip):
    wave, _ = clip
    delta, _, _ = cloaker.with_config(epsilon=0.001).perturbation(wave)
    assert np.abs(delta).max() <= 0.001 + 1e-7
    delta, _, _ = cloaker.with_config(snr_db=20.0, min_snr_db=40.0).perturbation(wave)
    assert snr_db(wave, delta) >= 40.0 - 1e-3


def test_zero_steps_is_identity(cloaker, clip):
    wave, _ = clip
    out, report = cloaker.with_config(steps=0).cloak(wave, SAMPLE_RATE)
    assert np.array_equal(out, wave) and report.emotion_before == report.emotion_after


def test_iterative_fgsm_does_not_touch_model_or_inputs(recognizer, clip):
    wave, _ = clip
    x = torch.from_numpy(wave)[None]
    before = [p.clone() for p in recognizer.parameters()]
    x_copy = x.clone()
    adv = IterativeFGSM(recognizer, steps=3, alpha=0.5, objective=away_from_top_k)(x, 0.002)
    assert torch.equal(x, x_copy) and not recognizer.training
    assert all(torch.equal(a, b) for a, b in zip(before, recognizer.parameters()))
    assert (adv - x).abs().max() <= 0.002 + 1e-7 and adv.abs().max() <= 1.0


def test_iterative_fgsm_descends_keep_retaken_every_few_steps(recognizer, clip):
    x = torch.from_numpy(clip[0])[None]
    seen = []
    pull = torch.from_numpy(np.random.default_rng(0).choice([-1.0, 1.0], x.shape).astype(np.float32))

    def keep(adv):
        seen.append(adv.clone())
        return pull

    attack = IterativeFGSM(recognizer, steps=6, alpha=0.5, objective=away_from_top_k)
    adv = attack(x, 0.002, keep=keep, keep_weight=1e3, keep_every=3)
    assert len(seen) == 2 and torch.equal(seen[0], x) and not torch.equal(seen[1], x)  # steps 0 and 3, where the attack is
    assert torch.allclose(adv - x, -0.002 * pull, atol=1e-7)  # a dominant keep is descended all the way
    with pytest.raises(ValueError, match="keep_every"):
        attack(x, 0.002, keep=keep, keep_every=0)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="steps"):
        CloakConfig(steps=-1)
    with pytest.raises(ValueError, match="epsilon"):
        CloakConfig(epsilon=2.0)
    with pytest.raises(ValueError, match="objective"):
        CloakConfig(objective="nope")


def test_window_starts_cover_evenly():
    assert window_starts(100, 200, 10) == [0]
    starts = window_starts(1000, 300, 50)
    assert starts[0] == 0 and starts[-1] == 700
    gaps = np.diff(starts)
    assert gaps.max() <= 250 and gaps.max() - gaps.min() <= 1


def test_long_audio_windows_join_seamlessly(recognizer, clip):
    """Three clips back to back (~6 windows of 2 s): the perturbation stays bounded and has no seam jumps."""
    wave, _ = clip
    long = np.concatenate([wave, wave[::-1], wave])
    c = Cloaker(recognizer, CloakConfig(steps=3, window_s=2.0, overlap_s=0.5, batch_windows=3))
    delta, before, after = c.perturbation(long)
    assert len(delta) == len(long) and np.isfinite(delta).all()
    bound = c.budget(long)
    assert np.all(np.abs(delta) <= bound + 1e-6)
    # a seam would show as a jump much larger than the sign-step noise between neighbours
    assert np.abs(np.diff(delta)).max() <= 2 * bound.max() + 1e-6
    assert before.sum() == pytest.approx(1, abs=1e-4) and after.sum() == pytest.approx(1, abs=1e-4)


def test_48k_stereo_24bit_keeps_format_and_highband(cloaker, clip, tmp_path):
    wave, _ = clip
    import soxr

    up = soxr.resample(wave, 16000, 48000)
    t = np.arange(len(up)) / 48000
    hiss = 0.01 * np.sin(2 * np.pi * 12000 * t)  # content above 8 kHz must come through untouched
    up = 0.5 * up / np.abs(up).max()
    stereo = np.stack([up + hiss, 0.5 * up - hiss], axis=1).astype(np.float32)
    src = tmp_path / "talk.wav"
    sf.write(src, stereo, 48000, subtype="PCM_24")
    report = cloak_file(cloaker, src, tmp_path / "out.wav")
    info = sf.info(tmp_path / "out.wav")
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (48000, 2, len(stereo), "PCM_24")
    a, _ = sf.read(src, dtype="float64")
    b, _ = sf.read(tmp_path / "out.wav", dtype="float64")
    diff = b - a
    assert np.allclose(diff[:, 0], diff[:, 1], atol=1e-5)  # the same perturbation on every channel
    spec = np.abs(np.fft.rfft(diff[:, 0]))
    freqs = np.fft.rfftfreq(len(diff), 1 / 48000)
    assert spec[freqs > 8500].max() < 1e-3 * spec.max()
    assert report.snr_db > 25 and report.emotion_before != report.emotion_after


def test_int16_output_clips_instead_of_wrapping(cloaker, clip, tmp_path):
    wave, _ = clip
    loud = np.clip(wave / np.abs(wave).max() * 1.2, -1, 1).astype(np.float32)  # already at full scale
    src = tmp_path / "loud.wav"
    sf.write(src, loud, 16000, subtype="PCM_16")
    cloak_file(cloaker, src, tmp_path / "out.wav")
    a, _ = sf.read(src, dtype="int16")
    b, _ = sf.read(tmp_path / "out.wav", dtype="int16")
    # a wrap-around would flip a full-scale sample to the opposite sign
    assert not np.any((a.astype(int) > 30000) & (b.astype(int) < 0))
    assert np.abs(b.astype(int) - a.astype(int)).max() < 3000


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_file_beyond_full_scale_keeps_its_range(cloaker, clip, tmp_path, subtype):
    """Float formats hold samples beyond +-1.0 legally: nothing is clipped and the SNR is the cloak's own."""
    wave, _ = clip
    loud = (wave / np.abs(wave).max() * 3.0).astype(np.float32)  # peaks at 3x full scale
    src = tmp_path / "loud.wav"
    sf.write(src, loud, 16000, subtype=subtype)
    report = cloak_file(cloaker, src, tmp_path / "out.wav")
    assert sf.info(tmp_path / "out.wav").subtype == subtype
    a, _ = sf.read(src, dtype="float64")
    b, _ = sf.read(tmp_path / "out.wav", dtype="float64")
    assert np.abs(b).max() > 2.5
    assert snr_db(a, b - a) == pytest.approx(report.snr_db, abs=0.01)
    assert report.snr_db >= STRENGTHS["medium"].snr_db - 1.0
    assert report.emotion_after != report.emotion_before


def test_in_memory_loud_float_is_scaled_for_the_model_and_back(cloaker, clip):
    """4x full scale: the model sees exactly the unit-peak audio, and the perturbation comes back 4x."""
    wave, _ = clip
    unit = (wave / np.abs(wave).max()).astype(np.float32)
    out1, r1 = cloaker.cloak(unit, SAMPLE_RATE)
    out4, r4 = cloaker.cloak(unit * 4, SAMPLE_RATE)
    assert np.abs(out4).max() > 3.5
    assert np.allclose(out4, 4 * out1, rtol=0, atol=1e-6)
    assert r4.snr_db == pytest.approx(r1.snr_db, abs=1e-3) and r4.snr_db >= STRENGTHS["medium"].snr_db - 1.0
    for e in r1.probs_before:
        assert r4.probs_before[e] == pytest.approx(r1.probs_before[e], abs=1e-5)
        assert r4.probs_after[e] == pytest.approx(r1.probs_after[e], abs=1e-5)
