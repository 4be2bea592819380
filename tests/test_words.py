"""Whisper base in torch (cloak.whisper_torch) against CTranslate2 and faster-whisper, and the words guard."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import require_corpus

from cloak.bandgain import BandGainConfig
from cloak.cloaker import CloakConfig
from cloak.eval.judges.data import find_ravdess
from cloak.whisper_torch import load_whisper_torch, read_ctranslate2, slaney_mel_filters
from cloak.words import GuardSettings, WordsGuard, cut_repeat


def _string(text: str) -> bytes:
    return struct.pack("H", len(text) + 1) + text.encode() + b"\0"


def _model_bin(version: int = 6) -> bytes:
    """A tiny CTranslate2 model.bin: one float16 matrix, one int8 scalar, one alias."""
    w = np.arange(6, dtype=np.float16).reshape(2, 3)
    out = struct.pack("I", version) + _string("TestSpec") + struct.pack("I", 1) + struct.pack("I", 2)
    out += _string("layer/weight") + struct.pack("B", 2) + struct.pack("II", 2, 3) + struct.pack("B", 4)
    out += struct.pack("I", w.nbytes) + w.tobytes()
    out += _string("flag") + struct.pack("B", 0) + struct.pack("B", 1) + struct.pack("I", 1) + struct.pack("b", -1)
    return out + struct.pack("I", 1) + _string("tied/weight") + _string("layer/weight")


def test_ctranslate2_reader_reads_shapes_types_and_aliases(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(_model_bin())
    v = read_ctranslate2(path)
    assert v["layer/weight"].dtype == np.float16 and v["layer/weight"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert v["flag"].shape == () and int(v["flag"]) == -1
    assert v["tied/weight"] is v["layer/weight"]
    path.write_bytes(_model_bin(version=5))
    with pytest.raises(ValueError, match="version 5"):
        read_ctranslate2(path)


def test_slaney_filters_match_whisper_s_own():
    from faster_whisper.feature_extractor import FeatureExtractor

    ref = np.asarray(FeatureExtractor().mel_filters, dtype=np.float64)  # librosa's Slaney filters
    ours = slaney_mel_filters().numpy()
    assert ours.shape == ref.shape == (80, 201)
    assert np.abs(ours - ref).max() < 1e-5 * ref.max()  # float32 rounding


@pytest.fixture(scope="module")
def whisper():
    return load_whisper_torch()


@pytest.fixture(scope="module")
def ct2():
    from cloak.whisper_bundle import load_whisper

    return load_whisper()


@pytest.mark.requires_asr
def test_front_end_and_encoder_match_ctranslate2(clip, whisper, ct2):
    wave = clip[0]
    mel_ref = ct2.feature_extractor(wave)
    mel = whisper.log_mel(torch.from_numpy(wave)[None])[0].numpy()
    assert mel.shape == mel_ref.shape and np.abs(mel - mel_ref).max() < 1e-4
    mel = mel[:, : mel.shape[1] // 2 * 2]
    ref = np.array(ct2.encode(np.ascontiguousarray(mel)))[0]  # int8 in CTranslate2, float32 here
    with torch.no_grad():
        ours = whisper.encode(torch.from_numpy(mel)[None])[0].numpy()
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert ours.shape == ref.shape and cos.min() > 0.97 and cos.mean() > 0.99


@pytest.mark.requires_asr
@pytest.mark.slow
def test_guard_reads_the_words_and_its_gradient_keeps_them(clip, whisper):
    guard = WordsGuard("de")
    words = guard.transcript(clip[0])  # 03a01Wa: "Der Lappen liegt auf dem Eisschrank."
    assert "Lappen" in words.text and words.tokens[-1] == 50257
    x = torch.from_numpy(clip[0])
    with torch.no_grad():  # teacher-forced, the model's own choice at every step is the transcript
        padded = torch.nn.functional.pad(x, (0, 30 * 16_000 - len(x)))
        logits = whisper.logits(torch.tensor([words.prompt + words.tokens[:-1]]),
                                whisper.encode(whisper.log_mel(padded[None])[..., :3000]))
    assert logits[0, len(words.prompt) - 1:].argmax(-1).tolist() == list(words.tokens)
    noisy = x + 0.05 * torch.from_numpy(np.random.default_rng(0).standard_normal(len(x)).astype(np.float32))
    noisy.requires_grad_(True)
    loss = guard.loss(noisy, words)
    (grad,) = torch.autograd.grad(loss, noisy)
    with torch.no_grad():
        assert float(guard.loss(x, words)) < float(loss)  # the clean audio carries its words best
        assert float(guard.loss(noisy - 2e-4 * grad.sign(), words)) < float(loss)  # the gradient points the way


@pytest.mark.requires_asr
def test_guard_detects_the_language_from_the_same_encoding(clip):
    told, detected = WordsGuard("de").transcript(clip[0]), WordsGuard().transcript(clip[0])
    assert detected == told and "Lappen" in detected.text  # German detected: the same prompt and tokens


PIECES = [" Dogs", " are", " sitting", " by", " the", " door", ".", " dogs", " are", " sit", "ting", " by", " no"]


def _decode(tokens: list[int]) -> str:
    return "".join(PIECES[t] for t in tokens)


def test_repeat_cut_keeps_the_first_saying_whatever_its_case_and_punctuation():
    once, again = list(range(7)), [7, 8, 9, 10, 11]  # " dogs are sit|ting by": cut short by the cap
    assert cut_repeat(once + again, _decode) == once
    assert cut_repeat(once, _decode) == once  # said once: nothing to cut
    assert cut_repeat(once + [7, 8], _decode) == once + [7, 8]  # two words are an echo, not a start-over
    assert cut_repeat(once + [7, 8, 9, 10, 11, 12], _decode) == once + [7, 8, 9, 10, 11, 12]  # back, then on elsewhere
    assert cut_repeat([12, 12, 12, 12], _decode) == [12]  # a word said four times reads as a start-over (a known limit)


@pytest.mark.requires_asr
def test_guard_transcribes_a_short_clip_in_a_short_window_once():
    path = require_corpus(find_ravdess(), "RAVDESS") / "03-01-01-01-02-01-17.flac"  # held-out actor 17
    wave, sr = sf.read(str(path), dtype="float32")
    words = WordsGuard("en").transcript(wave)  # in an 8 s window Whisper says this sentence twice
    assert sr == 16_000 and words.text == "Dogs are sitting by the door."


def test_guard_refuses_pieces_longer_than_whisper_reads():
    guard = WordsGuard("de")
    with pytest.raises(ValueError, match="30 s"):
        guard.transcript(np.zeros(31 * 16_000, np.float32))


@pytest.mark.parametrize(("make", "idle"), [(CloakConfig, CloakConfig(steps=0, words=1.0)),
                                            (BandGainConfig, BandGainConfig(crafted=False, words=1.0))],
                         ids=["attack", "band gains"])
def test_both_crafting_stages_share_the_guards_settings(make, idle):
    assert issubclass(make, GuardSettings)
    with pytest.raises(ValueError, match="words_every"):
        make(words=1.0, words_every=0)
    with pytest.raises(ValueError, match="words"):
        make(words=-0.5)
    assert make(words=1.0, language="de").guarded
    assert not make(words=0.0).guarded
    assert not idle.guarded  # nothing crafted: Whisper helps craft nothing


def test_guard_settings_alone_are_not_a_stage():
    with pytest.raises(TypeError):
        GuardSettings(words=1.0)
