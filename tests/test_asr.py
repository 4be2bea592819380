import http.server
import importlib.util
import json
import logging
import socket
import threading
import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from cloak.audio import load_audio, to_mono
from cloak.emodb import TEXTS
from cloak.eval.asr import (
    ASR_RATE, ASRError, CachedTranscriber, GoogleTranscriber, SphinxTranscriber, Transcriber, TranscriptCache,
    WhisperTranscriber, make_transcriber, to_asr_rate, transcript_key, wer_of, words_heard,
)
from cloak.eval.text import wer
from cloak.whisper_bundle import assemble_model_file, file_sha256, is_verified, verify_model_file

HAS_POCKETSPHINX = importlib.util.find_spec("pocketsphinx") is not None  # the `eval` and `sphinx` extras


def tone(seconds=0.5, rate=ASR_RATE, freq=220.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --- input checks and factory -----------------------------------------------------------------

def test_to_asr_rate_resamples_and_checks():
    out = to_asr_rate(tone(1.0, rate=48_000), 48_000)
    assert out.dtype == np.float32 and out.shape == (ASR_RATE,)
    for bad, match in [(np.zeros((10, 2)), "mono"), (np.zeros(0), "empty"), (np.full(10, np.nan), "NaN")]:
        with pytest.raises(ASRError, match=match):
            to_asr_rate(bad, ASR_RATE)


def test_make_transcriber_backends():
    assert isinstance(make_transcriber("whisper", "de"), WhisperTranscriber)
    assert isinstance(make_transcriber("sphinx", "en"), SphinxTranscriber)
    with pytest.raises(ASRError, match="unknown ASR backend 'vosk'"):
        make_transcriber("vosk", "de")


def test_sphinx_is_english_only():
    with pytest.raises(ASRError, match="only English"):
        make_transcriber("sphinx", "de")


@pytest.mark.skipif(not HAS_POCKETSPHINX, reason="pocketsphinx is not installed (pip install '.[sphinx]')")
def test_sphinx_runs_offline():
    assert isinstance(SphinxTranscriber().transcribe(tone(1.0), ASR_RATE), str)


def test_sphinx_without_its_extra_says_how_to_get_it(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pocketsphinx" else find_spec(name, *a))
    with pytest.raises(ASRError, match=r"pocketsphinx is not installed \(pip install 'cloak\[sphinx\]'\)"):
        SphinxTranscriber().transcribe(tone(1.0), ASR_RATE)


# --- google against a fake endpoint -----------------------------------------------------------

@pytest.fixture
def fake_google():
    """A local server answering like Google's Web Speech API v2; records what it was sent."""
    seen = []
    reply = {"body": ""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((parse_qs(urlparse(self.path).query), self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.end_headers()
            self.wfile.write(reply["body"].encode("utf-8"))

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/speech-api/v2/recognize", seen, reply
    server.shutdown()
    server.server_close()


def google_reply(transcript):
    result = {"result": [{"alternative": [{"transcript": transcript, "confidence": 0.9}], "final": True}],
              "result_index": 0}
    return '{"result":[]}\n' + json.dumps(result, ensure_ascii=False) + "\n"


def test_google_fake_endpoint(fake_google, caplog):
    endpoint, seen, reply = fake_google
    reply["body"] = google_reply("Der Lappen liegt auf dem Eisschrank")
    with caplog.at_level(logging.WARNING, logger="cloak.eval.asr"):
        asr = make_transcriber("google", "de", endpoint=endpoint)
    assert "leaves this machine" in caplog.text
    assert asr.transcribe(tone(0.5, rate=44_100), 44_100) == "Der Lappen liegt auf dem Eisschrank"
    query, content_type, body = seen[0]
    assert query["lang"] == ["de-DE"]
    assert content_type == "audio/x-flac; rate=16000" and body.startswith(b"fLaC")


def test_google_no_speech_is_empty(fake_google):
    endpoint, _, reply = fake_google
    reply["body"] = '{"result":[]}\n'
    assert GoogleTranscriber("de", endpoint=endpoint).transcribe(tone(), ASR_RATE) == ""


def test_google_offline_is_a_clear_error():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    asr = GoogleTranscriber("de", endpoint=f"http://127.0.0.1:{port}/recognize", timeout=5)
    start = time.monotonic()
    with pytest.raises(ASRError, match=r"^google: cannot reach the Google speech API \(offline\?\)"):
        asr.transcribe(tone(), ASR_RATE)
    assert time.monotonic() - start < 3


# --- transcript cache -------------------------------------------------------------------------

class Counting(Transcriber):
    def __init__(self, name="fake", language="de", identity="v1"):
        self.name, self.language, self.identity = name, language, identity
        self.calls = 0

    def _recognize(self, wave):
        self.calls += 1
        return f"{self.name} {self.language} {wave.size} ä ß"


def test_cache_hit_skips_the_inner_transcriber(tmp_path):
    inner = Counting()
    asr = CachedTranscriber(inner, TranscriptCache(tmp_path / "t.jsonl"))
    first = asr.transcribe(tone(1.0, rate=8000), 8000)
    assert asr.transcribe(tone(1.0, rate=8000), 8000) == first and inner.calls == 1
    asr.transcribe(tone(1.0, freq=300.0), ASR_RATE)
    assert inner.calls == 2
    reopened = CachedTranscriber(inner, TranscriptCache(tmp_path / "t.jsonl"))  # persists on disk
    assert reopened.transcribe(tone(1.0, rate=8000), 8000) == first and inner.calls == 2


def test_cache_keys_differ_by_backend_language_and_model(tmp_path):
    wave = to_asr_rate(tone(), ASR_RATE)
    keys = {transcript_key(wave, Counting(*args)) for args in
            [("fake", "de", "v1"), ("other", "de", "v1"), ("fake", "en", "v1"), ("fake", "de", "v2")]}
    assert len(keys) == 4
    cache = TranscriptCache(tmp_path / "t.jsonl")
    de, en = Counting(language="de"), Counting(language="en")
    assert CachedTranscriber(de, cache).transcribe(wave, ASR_RATE) != CachedTranscriber(en, cache).transcribe(wave, ASR_RATE)
    assert (de.calls, en.calls, len(cache)) == (1, 1, 2)


def test_cache_survives_a_torn_line(tmp_path):
    path = tmp_path / "t.jsonl"
    inner = Counting()
    CachedTranscriber(inner, TranscriptCache(path)).transcribe(tone(), ASR_RATE)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": {"audio_sha')  # a crash mid-write
    asr = CachedTranscriber(inner, TranscriptCache(path))
    asr.transcribe(tone(), ASR_RATE)
    asr.transcribe(tone(freq=500.0), ASR_RATE)
    assert inner.calls == 2 and len(TranscriptCache(path)) == 2


# --- whisper model files ----------------------------------------------------------------------

def test_assemble_verifies_and_marks(tmp_path):
    parts = [tmp_path / "a", tmp_path / "b"]
    parts[0].write_bytes(b"hello ")
    parts[1].write_bytes(b"world")
    (tmp_path / "joined").write_bytes(b"hello world")
    size, digest = 11, file_sha256(tmp_path / "joined")
    dest = assemble_model_file(parts, tmp_path / "model.bin", size=size, sha256=digest)
    assert dest.read_bytes() == b"hello world" and is_verified(dest, sha256=digest)
    dest.write_bytes(b"hello wirld")  # changed after verification: the marker no longer counts
    assert not is_verified(dest, sha256=digest)


def test_corrupt_model_file_is_rejected(tmp_path):
    parts = [tmp_path / "a", tmp_path / "b"]
    parts[0].write_bytes(b"hello ")
    parts[1].write_bytes(b"wirld")  # right size, wrong content
    digest = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"  # sha256(b"hello world")
    with pytest.raises(ASRError, match="SHA-256 mismatch"):
        assemble_model_file(parts, tmp_path / "model.bin", size=11, sha256=digest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temp file or half model left
    (tmp_path / "short.bin").write_bytes(b"hello")
    with pytest.raises(ASRError, match="5 bytes instead of 11"):
        verify_model_file(tmp_path / "short.bin", size=11, sha256=digest)


def test_whisper_bad_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ASRError, match="^whisper: cannot load model"):
        WhisperTranscriber("de", model=tmp_path).transcribe(tone(), ASR_RATE)


def test_whisper_identity_names_the_decoder_versions():
    import ctranslate2
    import faster_whisper

    identity = WhisperTranscriber("de").identity
    assert f"ctranslate2={ctranslate2.__version__}" in identity
    assert f"faster-whisper={faster_whisper.__version__}" in identity
    assert identity != WhisperTranscriber("de", beam_size=1).identity
    assert identity != WhisperTranscriber("de", cpu_threads=2).identity
    with pytest.raises(ASRError, match="^whisper: cpu_threads must be at least 1"):
        WhisperTranscriber("de", cpu_threads=0)


# --- whisper on real EmoDB clips --------------------------------------------------------------

HELD_OUT_CLIPS = ("03a01Fa.wav", "08b01Wa.wav", "03b09Tc.wav")  # speakers 03 and 08, three texts


@pytest.fixture(scope="module")
def held_out_clips(held_out):
    utterances = [u for u in held_out if u.path.name in HELD_OUT_CLIPS]
    assert len(utterances) == len(HELD_OUT_CLIPS)
    return [(u, *load_audio(u.path)) for u in utterances]


@pytest.mark.requires_asr
@pytest.mark.slow
def test_whisper_transcribes_held_out_emodb(held_out_clips):
    asr = make_transcriber("whisper", "de")
    refs, hyps = [], []
    for u, data, info in held_out_clips:
        refs.append(TEXTS[u.text_code])
        hyps.append(asr.transcribe(to_mono(data), info.samplerate))
    assert wer(refs, hyps) < 0.35, list(zip(refs, hyps))


@pytest.mark.requires_asr
@pytest.mark.slow
def test_wer_of_scores_one_clip_against_its_text(held_out_clips):
    u, data, info = held_out_clips[0]
    asr = make_transcriber("whisper", "de")
    wave = to_mono(data)
    score = wer_of(asr, wave, TEXTS[u.text_code], info.samplerate)
    assert score == wer([TEXTS[u.text_code]], [asr.transcribe(wave, info.samplerate)])
    assert score < 0.35
    assert wer_of(asr, wave, "ganz andere wörter hier", info.samplerate) > score


@pytest.mark.requires_asr
def test_whisper_unknown_language_is_a_clear_error():
    with pytest.raises(ASRError, match="^whisper: .*xx"):
        WhisperTranscriber("xx").transcribe(tone(), ASR_RATE)


@pytest.mark.requires_asr
@pytest.mark.slow
def test_words_heard_compares_without_a_reference(held_out_clips):
    (u, data, info), (v, other, other_info) = held_out_clips[0], next(
        c for c in held_out_clips if c[0].text_code != held_out_clips[0][0].text_code)
    wave = to_mono(data)
    same = words_heard(wave, wave.copy(), info.samplerate)
    assert same.language == "de" and wer([TEXTS[u.text_code]], [same.before]) <= 0.34
    assert same.after == same.before and same.changed == 0.0
    longer = np.concatenate([to_mono(other), np.zeros(other_info.samplerate // 2, np.float32)])  # lengths may differ
    another = words_heard(wave, longer, info.samplerate)
    assert another.before == same.before and another.changed >= 0.5
    assert wer([TEXTS[v.text_code]], [another.after]) <= 0.34  # the other sentence, in the first one's language


@pytest.mark.requires_asr
@pytest.mark.slow
def test_words_heard_beyond_one_window(held_out):
    """Past 30 s the words are heard as the bench scores WER (faster-whisper's 30 s windows)."""
    waves, texts = [], []
    firsts: dict = {}  # one reading of each sentence: a window of repeats sends faster-whisper to its sampling fallback
    for u in held_out:
        firsts.setdefault(u.text_code, u)
    for u in firsts.values():
        data, info = load_audio(u.path)
        waves.append(to_mono(data))
        texts.append(TEXTS[u.text_code])
    n = len(waves)
    while sum(map(len, waves)) <= 31 * info.samplerate:  # past one window: the first sentences again, far apart
        waves.append(waves[len(waves) - n])
        texts.append(texts[len(texts) - n])
    long = np.concatenate(waves)
    heard = words_heard(long, long.copy(), info.samplerate)
    assert heard.language == "de" and heard.after == heard.before and heard.changed == 0.0
    assert wer([" ".join(texts)], [heard.before]) < 0.35
