"""Listener-side quality metrics on real EmoDB clips: DNSMOS, speaker similarity, PESQ-WB, STOI."""
import itertools
import math
import os

import numpy as np
import pytest
import soundfile as sf

from cloak.eval.quality import (
    DNSMOS, DNSMOS_WINDOW, QualityMeter, SpeakerSimilarity, check_wave, cosine, dnsmos_windows, pesq_wb, stoi,
)

# Neutral clips, two texts per speaker: 03 and 10 are men, 08 and 09 women. One emotion keeps
# the comparison about the voice: across emotions GE2E similarity of one speaker varies widely.
NEUTRAL = {"03": ("03a01Nc", "03a02Nc"), "08": ("08a01Na", "08a02Na"),
           "10": ("10a01Nb", "10a02Na"), "09": ("09a01Nb", "09a04Nb")}


@pytest.fixture(scope="module")
def load(emodb_root):
    def read(name: str) -> np.ndarray:
        wave, rate = sf.read(str(emodb_root / "wav" / f"{name}.wav"), dtype="float32")
        assert rate == 16_000
        return wave
    return read


def with_noise(wave: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """``wave`` plus white noise at ``snr_db`` below its mean power."""
    noise = np.random.default_rng(seed).standard_normal(wave.size)
    noise *= math.sqrt(np.mean(wave.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


@pytest.fixture(scope="module")
def dnsmos():
    return DNSMOS()


@pytest.fixture(scope="module")
def speaker():
    return SpeakerSimilarity()


# --- DNSMOS ---------------------------------------------------------------------------------

def test_dnsmos_equals_speechmos(load, dnsmos):
    import onnxruntime as ort
    from speechmos import dnsmos as reference

    wave = load("03a05Wb")  # 2.96 s: doubled to 11.8 s, two windows
    assert len(dnsmos_windows(wave)) == 2
    # speechmos's own scoring code, with its sessions rebuilt on one thread so the test stays fast
    # (its default pool spins on every core); threads do not change what the model computes.
    package = os.path.dirname(reference.__file__)
    scorer = reference.DNSMOS(f"{package}/dnsmos_models/sig_bak_ovr.onnx", f"{package}/dnsmos_models/model_v8.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    scorer.onnx_sess = ort.InferenceSession(scorer.primary_model_path, options)
    scorer.p808_onnx_sess = ort.InferenceSession(f"{package}/dnsmos_models/model_v8.onnx", options)
    reference.dnsmos = scorer
    expected = reference.run(wave, 16_000)

    score = dnsmos.score(wave)
    assert score.sig == pytest.approx(expected["sig_mos"], abs=1e-3)
    assert score.bak == pytest.approx(expected["bak_mos"], abs=1e-3)
    assert score.ovrl == pytest.approx(expected["ovrl_mos"], abs=1e-3)


def test_dnsmos_windows_repeat_short_clips_and_hop_one_second():
    short = np.arange(50_000, dtype=np.float32)  # doubled twice: 200_000 samples, 12.5 s
    windows = dnsmos_windows(short)
    assert windows.shape == (3, DNSMOS_WINDOW)  # starts at 0, 1, 2 s; the last ends before 12 s
    np.testing.assert_array_equal(windows[0, 50_000:100_000], short)
    np.testing.assert_array_equal(windows[2], np.tile(short, 4)[32_000:32_000 + DNSMOS_WINDOW])
    long = np.zeros(20 * 16_000, dtype=np.float32)
    assert len(dnsmos_windows(long)) == 11  # every start 0..10 s, none lost to float rounding
    assert len(dnsmos_windows(long, hop_seconds=3)) == 4  # starts 0, 3, 6, 9 s
    with pytest.raises(ValueError, match="hop_seconds"):
        DNSMOS(hop_seconds=0)


def test_dnsmos_overall_drops_with_noise(load, dnsmos):
    wave = load("03b01Fa")  # one window
    clean, noisy = dnsmos.score(wave), dnsmos.score(with_noise(wave, 5.0))
    assert 2.0 < clean.ovrl < 4.0 and 1.0 <= noisy.ovrl
    assert clean.ovrl - noisy.ovrl > 0.8, (clean, noisy)
    assert clean.bak - noisy.bak > 1.0, (clean, noisy)  # the noise is in the background score


# --- speaker similarity ---------------------------------------------------------------------

def test_same_speaker_beats_other_speakers(load, speaker):
    embeddings = {name: speaker.embed(load(name)) for names in NEUTRAL.values() for name in names}
    same, other = [], []
    for a, b in itertools.combinations(embeddings, 2):
        (same if a[:2] == b[:2] else other).append(cosine(embeddings[a], embeddings[b]))
    assert min(same) > max(other) + 0.03, (sorted(same), sorted(other))
    men = cosine(embeddings["03a01Nc"], embeddings["10a01Nb"])
    assert cosine(embeddings["03a01Nc"], embeddings["03a02Nc"]) > men  # same sex, other speaker


def test_a_clip_is_itself_and_embeddings_are_unit_vectors(load, speaker):
    wave = load("08a01Na")
    embedding = speaker.embed(wave)
    assert embedding.shape == (256,)
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
    assert speaker.similarity(wave, wave.copy()) == pytest.approx(1.0, abs=1e-5)
    assert speaker.similarity(wave, with_noise(wave, 35.0)) > 0.9


def test_silence_has_no_voice(speaker):
    with pytest.raises(ValueError, match="silent"):
        speaker.embed(np.zeros(16_000, dtype=np.float32))


# --- PESQ and STOI --------------------------------------------------------------------------

def test_pesq_and_stoi_of_a_clip_against_itself_and_noise(load):
    wave = load("03a01Fa")
    assert pesq_wb(wave, wave) == pytest.approx(4.644, abs=0.01)
    assert stoi(wave, wave) == pytest.approx(1.0, abs=1e-6)
    noisy20, noisy5 = with_noise(wave, 20.0), with_noise(wave, 5.0)
    assert 4.644 > pesq_wb(wave, noisy20) > pesq_wb(wave, noisy5) > 1.0
    s20, s5 = stoi(wave, noisy20), stoi(wave, noisy5)
    assert s20 > 0.95  # white noise at 20 dB leaves speech fully intelligible ...
    assert s5 < s20 - 0.03 and s5 < 0.95  # ... at 5 dB it measurably does not


def test_intrusive_metrics_need_equal_lengths(load):
    wave = load("03a01Fa")
    with pytest.raises(ValueError, match="sample by sample.*reference has"):
        pesq_wb(wave, wave[:-160])
    with pytest.raises(ValueError, match="sample by sample"):
        stoi(wave, np.concatenate([wave, wave[:160]]))


@pytest.mark.parametrize("wave, rate, message", [
    (np.zeros(0, dtype=np.float32), 16_000, "empty"),
    (np.array([0.1, np.nan, 0.2] * 1000, dtype=np.float32), 16_000, "NaN"),
    (np.zeros(16_000, dtype=np.float32), 44_100, "16000 Hz.*44100"),
    (np.zeros((2, 16_000), dtype=np.float32), 16_000, "mono"),
    (np.zeros(16_000, dtype=np.int16), 16_000, "float"),
])
def test_bad_input_is_a_clear_error(wave, rate, message, dnsmos):
    with pytest.raises(ValueError, match=message):
        check_wave(wave, rate)
    with pytest.raises(ValueError, match=message):
        dnsmos.score(wave, rate)
    with pytest.raises(ValueError, match=message):
        pesq_wb(wave, wave, rate)


# --- all together ---------------------------------------------------------------------------

def test_meter_scores_a_noisy_cloak_and_reuses_the_clean_reference(load):
    wave = load("08b01Fd")  # one DNSMOS window
    meter = QualityMeter()
    ref = meter.reference(wave)
    noisy = meter.compare(ref, with_noise(wave, 20.0))
    assert noisy.dnsmos_clean == ref.dnsmos and noisy.dnsmos_cloaked.ovrl < ref.dnsmos.ovrl
    assert 0.8 < noisy.speaker_similarity < 1.0
    assert noisy.pesq_wb == pytest.approx(pesq_wb(wave, with_noise(wave, 20.0)), abs=1e-6)  # the same metric
    # it falls with every 10 dB of noise (measured 2.31 > 1.40 > 1.06), and PESQ-WB is harsh on
    # broadband noise: 20 dB is far from transparent (4.64)
    assert pesq_wb(wave, with_noise(wave, 30.0)) > noisy.pesq_wb > pesq_wb(wave, with_noise(wave, 10.0))
    assert noisy.pesq_wb < 2.0
    assert noisy.stoi == pytest.approx(stoi(wave, with_noise(wave, 20.0)), abs=1e-6) and noisy.stoi > 0.95
    assert noisy.note == ""
    row = noisy.to_row()
    assert row["dnsmos_ovrl_clean"] == ref.dnsmos.ovrl and row["pesq_wb"] == noisy.pesq_wb

    no_dnsmos = QualityMeter(metrics=("speaker", "pesq", "stoi"))
    stretched = no_dnsmos.measure(wave, np.repeat(wave, 2)[::3])  # a change of length
    assert math.isnan(stretched.pesq_wb) and math.isnan(stretched.stoi)
    assert "changed the length" in stretched.note
    assert stretched.speaker_similarity > 0.5 and stretched.dnsmos_cloaked is None


def test_meter_loads_only_what_it_is_asked_for(load):
    wave = load("03a01Fa")
    meter = QualityMeter(metrics=("pesq",))
    report = meter.measure(wave, with_noise(wave, 20.0))
    assert report.pesq_wb > 1.0 and report.stoi is None and report.dnsmos_cloaked is None
    assert report.speaker_similarity is None
    assert meter._dnsmos is None and meter._speaker is None
    with pytest.raises(ValueError, match="unknown quality metrics.*'mos'"):
        QualityMeter(metrics=("mos",))
