"""The band-gain stage: a moving equalizer crafted on the surrogate (cloak.bandgain)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from cloak.bandgain import BandGain, BandGainConfig, band_centres_hz, band_weights
from cloak.chain import MODES, Chain, Mode


def _read(held_out, name: str) -> np.ndarray:
    return sf.read(str(next(u for u in held_out if u.path.name == name).path), dtype="float32")[0]


def test_band_weights_partition_each_bin_and_peak_at_the_centres():
    w = band_weights(16)
    assert w.shape == (257, 16)
    assert torch.allclose(w.sum(1), torch.ones(257))
    centres = band_centres_hz(16)
    assert centres[0] == pytest.approx(50, abs=0.5) and centres[-1] == pytest.approx(7800, abs=1)
    assert np.all(np.diff(centres) > 0)
    for b in (3, 8, 12):  # the bin nearest a centre belongs mostly to that band
        k = round(centres[b] / 31.25)
        assert int(w[k].argmax()) == b and w[k, b] > 0.8
    assert w[0, 0] == 1 and w[-1, -1] == 1  # beyond the outer centres: the outer band


def test_zero_gains_give_the_input_back(clip, recognizer):
    wave = clip[0]
    stage = BandGain(recognizer)
    x = torch.from_numpy(wave)
    spec = torch.stft(x, 512, 128, window=stage.window, return_complex=True)
    y = stage._apply(spec, torch.zeros(16, 5), len(x))
    assert torch.allclose(y, x, atol=1e-5)


def test_crafted_gains_move_the_surrogate_more_than_random_ones(held_out, recognizer):
    """Same size, different direction: only the crafted gains pull the surrogate off its reading."""
    drops = {}
    for crafted in (True, False):
        stage = BandGain(recognizer, BandGainConfig(max_gain_db=3.0, crafted=crafted))
        d = []
        for name in ("03a01Wa.wav", "08a02Fe.wav", "03a05Tc.wav"):
            wave = _read(held_out, name)
            x = torch.from_numpy(wave)
            g = stage.gains(x)
            assert g.shape[0] == 16 and float(g.abs().max()) <= 3.0 + 1e-6
            with torch.no_grad():
                before = torch.softmax(recognizer(x[None]), -1)[0]
                after = torch.softmax(recognizer(torch.from_numpy(stage(wave))[None]), -1)[0]
            d.append(float(before.max() - after[before.argmax()]))
        drops[crafted] = np.mean(d)
    assert drops[True] > 0.3 and drops[True] > drops[False] + 0.2


def test_random_control_is_full_size_and_seeded(clip, recognizer):
    x = torch.from_numpy(clip[0])
    a = BandGain(recognizer, BandGainConfig(max_gain_db=2.0, crafted=False, seed=1)).gains(x)
    b = BandGain(recognizer, BandGainConfig(max_gain_db=2.0, crafted=False, seed=1)).gains(x)
    c = BandGain(recognizer, BandGainConfig(max_gain_db=2.0, crafted=False, seed=2)).gains(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.all(a.abs() == 2.0)


def test_long_audio_is_windowed_and_silence_stays_silent(clip, recognizer):
    wave = clip[0]
    long = np.concatenate([wave, wave, np.zeros(16_000, np.float32), wave, wave, wave]).astype(np.float32)
    stage = BandGain(recognizer, BandGainConfig(window_s=4.0, overlap_s=0.5, steps=2))
    out = stage(long)
    assert out.shape == long.shape and np.isfinite(out).all()
    gap = slice(2 * len(wave) + 1_600, 2 * len(wave) + 16_000 - 1_600)  # 0.1 s inside the pause
    assert np.abs(out[gap]).max() < 1e-4
    ratio = np.sqrt(np.mean(out ** 2) / np.mean(long ** 2))
    assert 10 ** (-3 / 20) <= ratio <= 10 ** (3 / 20)  # a gain of at most 3 dB anywhere


def test_config_rejects_bad_values_and_the_stage_needs_a_neutralizer():
    for bad in ({"max_gain_db": 0}, {"max_gain_db": 20}, {"bands": 1}, {"control_s": 0.001},
                {"steps": 0}, {"objective": "nope"}, {"overlap_s": 5.0}):
        with pytest.raises(ValueError):
            BandGainConfig(**bad)
    with pytest.raises(ValueError, match="neutral"):
        Mode("subtle", "x", attack=MODES["subtle"].attack, bands=BandGainConfig())


def test_chain_runs_the_stage_after_the_neutralizer(held_out, recognizer):
    from dataclasses import replace

    wave = _read(held_out, "08a02Tb.wav")
    plain, _ = Chain(recognizer, MODES["neutral"]).cloak(wave, 16_000)
    banded, report = Chain(recognizer, replace(MODES["neutral"], bands=BandGainConfig())).cloak(wave, 16_000)
    assert banded.shape == plain.shape and np.isfinite(banded).all()
    change_db = 10 * np.log10(np.sum((banded - plain) ** 2) / np.sum(plain ** 2))
    assert -40 < change_db < -5  # an equalizer's change, not noise nor a new signal
    top = max(report.probs_before, key=report.probs_before.get)
    assert report.probs_after[top] < report.probs_before[top]


@pytest.mark.requires_asr
@pytest.mark.slow
def test_words_guard_keeps_what_whisper_hears_and_still_moves_the_surrogate(held_out, recognizer):
    """The same ±3 dB stage crafted with and without the guard: Whisper's cross-entropy of the clean
    clip's transcript is lower with it, and the surrogate is still pulled off its reading."""
    from dataclasses import replace

    from cloak.words import WordsGuard

    guard = WordsGuard("de")
    for name in ("08a02Fe.wav", "03a05Tc.wav"):
        wave = _read(held_out, name)
        words = guard.transcript(wave)
        out = {}
        for w in (0.0, 1.0):
            chain = Chain(recognizer, replace(MODES["neutral"], bands=BandGainConfig(words=w, language="de")))
            out[w], report = chain.cloak(wave, 16_000)
            top = max(report.probs_before, key=report.probs_before.get)
            assert report.probs_after[top] < report.probs_before[top]
        assert (chain.bander.guard is not None) and Chain(recognizer, replace(
            MODES["neutral"], bands=BandGainConfig(words=0.0))).bander.guard is None
        with torch.no_grad():
            ce = {w: float(guard.loss(torch.from_numpy(y), words)) for w, y in out.items()}
        assert ce[1.0] < ce[0.0]


@pytest.mark.requires_asr
@pytest.mark.slow
def test_guarded_long_recording_is_cut_into_pieces_whisper_reads_whole(held_out, recognizer, monkeypatch):
    """Over 30 s: the neutralizer's segments shrink so each stays within Whisper's window, and each
    piece is transcribed from its own stretch of the clean audio."""
    from dataclasses import replace

    from cloak.words import WordsGuard

    names = ("03a01Wa.wav", "08a02Fe.wav", "03a05Tc.wav", "08a02Tb.wav")
    wave = np.concatenate([_read(held_out, n) for n in names] * 3)  # about 34 s
    heard = []
    transcript = WordsGuard.transcript
    monkeypatch.setattr(WordsGuard, "transcript", lambda self, w: heard.append(len(w)) or transcript(self, w))
    chain = Chain(recognizer, replace(MODES["neutral"], bands=BandGainConfig(language="de")))
    out, _ = chain.cloak(wave, 16_000)
    assert np.isfinite(out).all() and 0.6 * len(wave) < len(out) < 1.4 * len(wave)
    assert len(heard) >= 2 and sum(heard) == pytest.approx(len(wave), abs=16)
    assert max(heard) * chain.neutralizer.config.max_stretch < 30 * 16_000


@pytest.mark.requires_asr
@pytest.mark.slow
def test_words_guard_on_the_attack_keeps_what_whisper_hears_and_still_moves_the_surrogate(held_out, recognizer):
    """The adversarial stage on the neutralizer's output, with and without the guard: the same budget,
    Whisper's cross-entropy of the clean clip's transcript is lower with it, and the surrogate still
    leaves its reading either way."""
    from dataclasses import replace

    from cloak.cloaker import STRENGTHS
    from cloak.words import WordsGuard

    guard = WordsGuard("de")
    wave = _read(held_out, "03a01Wa.wav")
    words = guard.transcript(wave)
    out = {}
    for w in (0.0, 1.0):
        chain = Chain(recognizer, replace(MODES["neutral"], attack=replace(STRENGTHS["medium"], words=w, language="de")))
        assert (chain.guard is not None) == (w > 0) == chain.mode.guarded
        out[w], report = chain.cloak(wave, 16_000)
        top = max(report.probs_before, key=report.probs_before.get)
        assert report.probs_after[top] < report.probs_before[top]
    assert len(out[0.0]) == len(out[1.0])
    with torch.no_grad():
        ce = {w: float(guard.loss(torch.from_numpy(y), words)) for w, y in out.items()}
    assert ce[1.0] < ce[0.0]


def test_transcripts_run_beside_the_neutralizer_and_stop_when_the_user_cancels(held_out, recognizer, monkeypatch):
    """The guard transcribes the clean segments in a second thread while the neutralizer works; a cancel
    (the progress callback raising) reaches the caller and drops the transcripts not yet started."""
    import threading
    import time
    from dataclasses import replace

    from cloak.cloaker import STRENGTHS
    from cloak.words import Transcript, WordsGuard

    class Cancelled(Exception):
        pass

    threads, started = set(), []

    def slow(self, w):
        threads.add(threading.current_thread().name)
        started.append(len(w))
        time.sleep(3.0)
        return Transcript((50258,), (50257,), "")

    monkeypatch.setattr(WordsGuard, "transcript", slow)
    names = ("03a01Wa.wav", "08a02Fe.wav", "03a05Tc.wav", "08a02Tb.wav")
    wave = np.concatenate([_read(held_out, n) for n in names] * 3)  # about 34 s: two segments or more
    chain = Chain(recognizer, replace(MODES["neutral"], attack=replace(STRENGTHS["low"], steps=2, words=1.0)))
    segments = len(chain.cuts(wave, 16_000)) - 1
    assert segments >= 2

    def cancel(done: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        chain.cloak(wave, 16_000, progress=cancel)
    assert threading.current_thread().name not in threads and len(threads) == 1
    assert 1 <= len(started) < segments  # a transcript never started: the cancel dropped it (a clock would only add flake)


@pytest.mark.requires_asr
def test_guarded_stages_share_one_transcript_per_segment(held_out, recognizer, monkeypatch):
    """Band gains and the attack both guarded: each neutralizer segment is transcribed once, and the
    guard needs the neutralizer's segments (the subtle mode refuses it)."""
    from dataclasses import replace

    from cloak.cloaker import STRENGTHS
    from cloak.words import Transcript, WordsGuard

    heard = []
    monkeypatch.setattr(WordsGuard, "transcript", lambda self, w: heard.append(len(w)) or Transcript((50258,), (50257,), ""))
    monkeypatch.setattr(WordsGuard, "loss", lambda self, w, words, states=None: (w ** 2).mean())
    wave = _read(held_out, "08a02Fe.wav")
    mode = replace(MODES["neutral"], bands=BandGainConfig(steps=2), attack=replace(STRENGTHS["low"], steps=2, words=1.0))
    out, _ = Chain(recognizer, mode).cloak(wave, 16_000)
    assert np.isfinite(out).all() and heard == [len(wave)]
    with pytest.raises(ValueError, match="neutral"):
        replace(MODES["subtle"], attack=replace(STRENGTHS["medium"], words=1.0))
