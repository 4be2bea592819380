"""The desktop app, used as a person would: open, cloak, compare, save, record, cancel.

Runs headless (``QT_QPA_PLATFORM=offscreen``); ``sounddevice`` is never touched: each test
replaces :func:`cloak.gui.audio_device._sounddevice` with a fake module.
"""
from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402

from cloak.audio import AudioError, AudioInfo, info_for, to_model_rate  # noqa: E402
from cloak.chain import DEFAULT_MODE, MODES  # noqa: E402
from cloak.cloaker import STRENGTHS  # noqa: E402
from cloak.emodb import EMOTIONS, TEXTS  # noqa: E402
from cloak.eval.text import wer  # noqa: E402
from cloak.gui import audio_device, readout, session  # noqa: E402
from cloak.gui.window import MainWindow  # noqa: E402
from cloak.model import load_recognizer  # noqa: E402

# A held-out (speaker 03) angry utterance, 1.9 s: the shipped model reads it correctly
# and the "high" preset moves it to another emotion.
EMODB_FILE = "03a01Wa.wav"
# Another held-out one (speaker 08), for the default mode and the independent readout.
EMODB_NEUTRAL_FILE = "08a01Wa.wav"


# --------------------------------------------------------------------------- fixtures
class FakeSoundDevice:
    """Enough of ``sounddevice`` for the app: one mic that 'hears' ``samples``, one speaker."""

    def __init__(self, samples: np.ndarray | None = None, samplerate: int = 16000,
                 inputs: int = 1, outputs: int = 2) -> None:
        self.samples = samples if samples is not None else 0.3 * np.sin(
            2 * np.pi * 220 * np.arange(2 * samplerate) / samplerate).astype(np.float32)
        self.samplerate = samplerate
        self.devices = [{"name": "Fake microphone", "max_input_channels": inputs, "max_output_channels": 0,
                         "default_samplerate": samplerate},
                        {"name": "Fake speakers", "max_input_channels": 0, "max_output_channels": outputs,
                         "default_samplerate": 48000}]
        self.default = SimpleNamespace(device=(0, 1))
        self.played: list[tuple[np.ndarray, int]] = []
        self.stopped = 0
        fake = self

        class InputStream:
            def __init__(self, *, device, channels, samplerate, dtype, blocksize, callback):
                assert channels == 1 and dtype == "float32"
                self.callback, self.blocksize = callback, blocksize
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._feed, daemon=True)

            def _feed(self):  # like PortAudio: blocks arrive on another thread, a bit faster than real time
                data = fake.samples
                for i in range(0, len(data), self.blocksize):
                    if self._stop.is_set():
                        return
                    block = data[i:i + self.blocksize, None]
                    self.callback(block, len(block), None, None)
                    time.sleep(0.2 * self.blocksize / fake.samplerate)

            def start(self):
                self._thread.start()

            def stop(self):
                self._stop.set()
                self._thread.join()

            def close(self):
                pass

        self.InputStream = InputStream

    def query_devices(self):
        return self.devices

    def play(self, data, samplerate):
        self.played.append((data, samplerate))

    def stop(self):
        self.stopped += 1


@pytest.fixture
def fake_sd(monkeypatch):
    fake = FakeSoundDevice()
    monkeypatch.setattr(audio_device, "_sounddevice", lambda: fake)
    return fake


@pytest.fixture
def no_sd(monkeypatch):
    def missing():
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(audio_device, "_sounddevice", missing)


@pytest.fixture(scope="module")
def model():
    return load_recognizer()  # the model ships with the package: its absence is a failure, not a skip


@pytest.fixture(scope="module")
def emodb_file(emodb_root) -> Path:
    return emodb_root / "wav" / EMODB_FILE


@pytest.fixture
def clip(emodb_file, tmp_path) -> Path:
    """A private copy of the EmoDB file (saving writes beside the input)."""
    dest = tmp_path / emodb_file.name
    shutil.copy(emodb_file, dest)
    return dest


def make_window(qtbot, model=None, error=None) -> MainWindow:
    w = MainWindow(model, error)
    qtbot.addWidget(w)
    w.show()
    return w


def open_and_predict(qtbot, w: MainWindow, path) -> None:
    with qtbot.waitSignal(w.predicted, timeout=20_000):
        assert w.open_file(path)


def cloak(qtbot, w: MainWindow, timeout=30_000) -> str:
    with qtbot.waitSignal(w.cloak_ended, timeout=timeout) as blocker:
        qtbot.mouseClick(w.cloak_button, Qt.LeftButton)
        assert w.busy
    return blocker.args[0]


def cloak_and_read(qtbot, w: MainWindow, timeout=180_000) -> str:
    """Cloak, then wait for the independent readout; returns how the readout ended."""
    with qtbot.waitSignal(w.readout_ended, timeout=timeout) as blocker:
        assert cloak(qtbot, w) == "finished"
    return blocker.args[0]


# --------------------------------------------------------------------------- pure steps
def test_make_config_applies_overrides_and_rejects_bad_values():
    assert session.make_config("high") == STRENGTHS["high"]
    cfg = session.make_config("low", steps=7, epsilon=0.01, min_snr_db=25.0)
    assert (cfg.steps, cfg.epsilon, cfg.min_snr_db, cfg.snr_db) == (7, 0.01, 25.0, STRENGTHS["low"].snr_db)
    with pytest.raises(ValueError, match="unknown strength"):
        session.make_config("extreme")
    with pytest.raises(ValueError, match="steps"):
        session.make_config("low", steps=0)
    with pytest.raises(ValueError, match="epsilon"):
        session.make_config("low", epsilon=2.0)


def test_make_mode_sets_calm_or_attack_and_rejects_bad_values():
    assert session.make_mode("neutral") == MODES["neutral"]
    assert session.make_mode("neutral", calm=0.4).neutralize.strength == 0.4
    assert session.make_mode("neutral", calm=0.4, attack=STRENGTHS["high"]).attack is None  # no attack stage
    assert session.make_mode("subtle", attack=STRENGTHS["high"]).attack == STRENGTHS["high"]
    assert session.make_mode("subtle", calm=0.4) == MODES["subtle"]  # nothing to calm
    assert session.make_mode("neutral", flatten_loudness=True).neutralize.loudness == 1.0
    assert session.make_mode("neutral").neutralize.loudness == 0.0
    assert session.make_mode("subtle", flatten_loudness=True) == MODES["subtle"]  # nothing to flatten
    assert session.make_mode("neutral").bands is None
    assert session.make_mode("neutral", band_gain=2.0).bands.max_gain_db == 2.0
    assert session.make_mode("subtle", band_gain=2.0) == MODES["subtle"]  # the stage follows the neutralizer
    thorough = session.make_mode("thorough", attack=STRENGTHS["high"])  # the GUI's strength, the preset's words guard
    assert thorough.attack.steps == STRENGTHS["high"].steps and thorough.attack.words == 1.0 and thorough.guarded
    with pytest.raises(ValueError, match="unknown mode"):
        session.make_mode("loud")
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        session.make_mode("neutral", calm=1.5)


def test_save_paths_default_beside_input_and_never_the_input(tmp_path):
    src = session.Source(np.zeros((10, 1), np.float32), AudioInfo(16000, 1, 10, "FLAC", "PCM_24"), tmp_path / "a.flac")
    assert session.default_save_path(src) == tmp_path / "a.cloaked.flac"
    with pytest.raises(AudioError, match="refusing to overwrite the input"):
        session.check_save_path(tmp_path / "x" / ".." / "a.flac", src)
    assert info_for(tmp_path / "b.flac", src.info) == src.info
    assert info_for(tmp_path / "b.wav", src.info).format == "WAV"
    rec = session.source_from_recording(np.full(1600, 0.1, np.float32), 16000)
    assert session.default_save_path(rec, tmp_path) == tmp_path / "recording.cloaked.wav"
    with pytest.raises(AudioError, match="silent"):
        session.source_from_recording(np.zeros(16000, np.float32), 16000)


# --------------------------------------------------------------------------- the main path
def test_cloak_emodb_file_changes_emotion_then_save_and_reload(qtbot, model, clip, fake_sd):
    w = make_window(qtbot, model)
    assert not w.notice.isVisible() and not w.cloak_button.isEnabled()
    open_and_predict(qtbot, w, clip)
    assert w.emotion_before in EMOTIONS and w.emotion_after is None
    assert w.cloak_button.isEnabled() and not w.save_button.isEnabled()
    shown_before = w.emotion_before

    w.set_mode("subtle")
    w.set_strength("high")
    assert w.config() == STRENGTHS["high"] and w.mode().attack == STRENGTHS["high"]
    assert cloak_and_read(qtbot, w) == "finished"
    assert w.report.mode == "subtle" and "SNR" in w.result_label.text()
    assert w.judge_after is not None and w.readout.similarity > 0.9  # the same voice plus faint noise
    assert w.emotion_before == shown_before
    assert w.emotion_after != w.emotion_before, (w.bars.before, w.bars.after)
    assert "now hears" in w.banner.text()
    assert w.progress_bar.value() == w.progress_bar.maximum() == STRENGTHS["high"].steps
    assert w.cloaked.shape == w.source.data.shape
    assert 0 < np.abs(w.cloaked - w.source.data).max() < 0.1

    # A/B playback goes to the (fake) speakers
    assert w.play("original") and w.play("cloaked")
    assert np.array_equal(fake_sd.played[-1][0], w.cloaked) and fake_sd.played[-1][1] == 16000

    # never over the input; default name beside it, same format and subtype
    assert w.save_to(clip, overwrite=True) is None
    assert "refusing to overwrite the input" in w.banner.text()
    dest = w.save_to(session.default_save_path(w.source))
    assert dest == clip.with_name("03a01Wa.cloaked.wav") and dest.is_file()
    assert (sf.info(str(dest)).format, sf.info(str(dest)).subtype) == (w.source.info.format, w.source.info.subtype)
    assert w.save_to(dest) is None and "exists" in w.banner.text()  # no silent overwrite

    cloaked_emotion = w.emotion_after
    open_and_predict(qtbot, w, dest)
    assert w.source.path == dest and w.cloaked is None and w.emotion_after is None
    assert w.emotion_before == cloaked_emotion  # the cloak survives 16-bit saving


def test_cancel_mid_run_keeps_the_window_usable(qtbot, model, clip, fake_sd):
    w = make_window(qtbot, model)
    open_and_predict(qtbot, w, clip)
    w.set_mode("subtle")
    w.set_strength("medium", steps=100_000)
    with qtbot.waitSignal(w.cloak_ended, timeout=20_000) as ended:
        with qtbot.waitSignal(w.progress_bar.valueChanged, timeout=20_000):
            qtbot.mouseClick(w.cloak_button, Qt.LeftButton)
        assert w.cancel_button.isEnabled() and not w.open_button.isEnabled()
        qtbot.mouseClick(w.cancel_button, Qt.LeftButton)
    assert ended.args == ["cancelled"]
    assert "cancelled" in w.banner.text() and w.cloaked is None and w.emotion_after is None
    assert w.cloak_button.isEnabled() and w.open_button.isEnabled() and not w.cancel_button.isEnabled()


# --------------------------------------------------------------------------- modes and the independent readout
def test_switching_modes_enables_the_right_controls(qtbot, fake_sd):
    w = make_window(qtbot)
    assert w.mode_combo.currentData() == DEFAULT_MODE == "thorough"
    assert w.calm_slider.value() == round(100 * MODES["thorough"].neutralize.strength)  # the preset's calm
    assert w.mode() == MODES["thorough"]  # its attack and words guard as cloak apply and the bench run them
    for i, name in enumerate(MODES):
        assert w.mode_combo.itemData(i, Qt.ToolTipRole) == MODES[name].summary
    assert w.calm_slider.isEnabled() and w.strength_box.isEnabled() and w.strength_combo.isEnabled()
    assert MODES["thorough"].summary[1:] in w.mode_help.text()

    w.set_mode("neutral")
    assert w.mode() == MODES["neutral"]
    assert w.calm_slider.isEnabled() and not w.strength_box.isEnabled()
    assert not w.strength_combo.isEnabled() and not w.advanced.isEnabled()  # the attack settings are subtle's
    assert MODES["neutral"].summary[1:] in w.mode_help.text()

    w.set_mode("subtle")
    assert not w.calm_slider.isEnabled() and w.strength_box.isEnabled() and w.strength_combo.isEnabled()
    assert MODES["subtle"].summary[1:] in w.mode_help.text()
    assert w.mode().attack == STRENGTHS[w.strength_combo.currentData()] and w.mode().neutralize is None

    assert not w.loudness_check.isEnabled() and not w.bands_check.isEnabled()

    w.set_mode("neutral", calm=0.35)
    assert w.calm_slider.isEnabled() and not w.strength_box.isEnabled() and w.calm_value.text() == "35 %"
    assert w.mode() == MODES["neutral"].with_strength(0.35)
    assert w.loudness_check.isEnabled() and not w.loudness_check.isChecked()
    qtbot.mouseClick(w.loudness_check, Qt.LeftButton, pos=QPoint(8, w.loudness_check.height() // 2))  # on the box
    assert w.mode().neutralize.loudness == 1.0 and w.mode() == MODES["neutral"].with_strength(0.35).flatten_loudness()
    assert w.bands_check.isEnabled() and w.mode().bands is None
    qtbot.mouseClick(w.bands_check, Qt.LeftButton, pos=QPoint(8, w.bands_check.height() // 2))
    assert w.mode().bands is not None and w.mode().bands.max_gain_db == session.BAND_GAIN_DB
    assert w.mode().bands.words > 0  # the switch crafts with the words guard


def test_default_cloak_shows_an_independent_judge_and_the_voice(qtbot, model, emodb_root, tmp_path, fake_sd):
    """The default mode (thorough: neutralized, then attacked with the words guard) on a held-out clip."""
    src = emodb_root / "wav" / EMODB_NEUTRAL_FILE
    clip = tmp_path / src.name
    shutil.copy(src, clip)
    w = make_window(qtbot, model)
    open_and_predict(qtbot, w, clip)
    assert w.judge_before is None and w.judge in w.judge_label.text()
    assert cloak_and_read(qtbot, w) == "finished"

    r = w.report
    assert r.mode == DEFAULT_MODE and r.duration_out_s == pytest.approx(len(w.cloaked) / w.source.info.samplerate)
    assert w.cloaked.ndim == w.source.data.ndim and w.cloaked.shape[1:] == w.source.data.shape[1:]
    assert f"{r.duration_out_s:.2f} s" in w.result_label.text() and "SNR" not in w.result_label.text()
    assert w.plots.wave["cloaked"].duration == pytest.approx(r.duration_out_s)
    assert w.plots.wave["original"].span == w.plots.wave["cloaked"].span >= r.duration_s

    # the judge's before and after, its name, and that it never helped craft
    ro = w.readout
    assert ro.judge == w.judge == readout.DEFAULT_JUDGE and not ro.missing, ro.missing
    assert w.judge_before == max(ro.judge_before, key=ro.judge_before.get) in ro.judge_before
    assert w.judge_after == max(ro.judge_after, key=ro.judge_after.get)
    text = w.judge_label.text()
    assert f"Before: <b>{w.judge_before}</b>" in text and f"After: <b>{w.judge_after}</b>" in text
    assert "never helped craft" in text and ro.judge in text
    assert f"independent judge ({ro.judge})" in w.banner.text()
    # the same judge, run here on the same audio, hears the same
    from cloak.eval.judges import load_judge
    probs = load_judge(ro.judge).predict_proba([to_model_rate(x.reshape(len(x), -1), w.source.info.samplerate, 16000)
                                                for x in (w.source.data, w.cloaked)])
    assert np.allclose(probs, [list(ro.judge_before.values()), list(ro.judge_after.values())], atol=1e-6)
    # the voice: still the speaker's, and its listening quality before and after
    assert 0.5 < ro.similarity <= 1.0 and f"{ro.similarity:.2f}" in w.quality_label.text()
    from cloak.eval.quality import DNSMOS
    dnsmos = DNSMOS(hop_seconds=readout.DNSMOS_HOP_S)  # the same score, computed here on the same audio
    before, after = (dnsmos.score(to_model_rate(x.reshape(len(x), -1), w.source.info.samplerate, 16000)).ovrl
                     for x in (w.source.data, w.cloaked))
    assert ro.dnsmos_before == pytest.approx(before, abs=1e-6) and ro.dnsmos_after == pytest.approx(after, abs=1e-6)
    assert f"{ro.dnsmos_before:.2f} → {ro.dnsmos_after:.2f}" in w.quality_label.text()
    # the words Whisper base hears before (the clip's sentence) and after, and how many changed
    assert wer([TEXTS["a01"]], [ro.words_before]) <= 0.34 and ro.words_changed == wer([ro.words_before], [ro.words_after])
    assert f"(<b>{ro.words_changed:.0%}</b> changed)" in w.quality_label.text()
    assert html.escape(ro.words_before.strip()) in w.quality_label.text()

    # A/B playback and saving handle an output whose length differs from the input
    assert w.play("cloaked") and np.array_equal(fake_sd.played[-1][0], w.cloaked) and fake_sd.played[-1][1] == 16000
    dest = w.save_to(session.default_save_path(w.source))
    info = sf.info(str(dest))
    assert (info.samplerate, info.channels, info.frames) == (16000, w.source.info.channels, len(w.cloaked))


def test_readout_says_why_a_part_is_missing(monkeypatch, emodb_file):
    wave, sr = sf.read(str(emodb_file), dtype="float32")
    assert sr == 16000
    readout._dnsmos.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the eval extra were not installed
    try:
        r = readout.measure(wave, 0.5 * wave, judge="no-such-judge")
    finally:
        readout._dnsmos.cache_clear()
    assert r.dnsmos_before is None and "onnxruntime is not installed" in r.missing["dnsmos"]
    assert r.judge_before is None and "unknown judge 'no-such-judge'" in r.missing["judge"]
    assert 0.8 < r.similarity <= 1.0 and "speaker" not in r.missing  # the same voice, quieter
    assert wer([TEXTS["a01"]], [r.words_before]) <= 0.34 and r.words_changed == wer([r.words_before], [r.words_after])


# --------------------------------------------------------------------------- bad input and missing pieces
@pytest.mark.parametrize("content, message", [
    (b"RIFF\x00\x00\x00\x00WAVEfmt garbage that is not audio", "not a readable audio file"),
    (b"", "empty file"),
    (b"hello, I am a text file\n" * 50, "not a readable audio file"),
])
def test_corrupt_file_shows_a_message(qtbot, tmp_path, fake_sd, content, message):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(content)
    w = make_window(qtbot)
    assert not w.open_file(bad)
    assert w.banner.isVisible() and message in w.banner.text() and w.banner.level == "error"
    assert w.source is None and not w.cloak_button.isEnabled()


def test_silent_file_is_refused_and_keeps_the_previous_audio(qtbot, tmp_path, fake_sd, clip):
    silent = tmp_path / "silence.wav"
    sf.write(str(silent), np.zeros(16000, np.float32), 16000)
    w = make_window(qtbot)
    assert w.open_file(clip)
    assert not w.open_file(silent)
    assert "silent" in w.banner.text() and w.source.path == clip


def test_model_missing_is_explained_and_files_still_open(qtbot, clip, no_sd):
    w = make_window(qtbot, None, "models/emodb_cnn.pt: model checkpoint not found")
    assert w.notice.isVisible() and "Model missing" in w.notice.text() and "not found" in w.notice.text()
    assert "No audio device" in w.notice.text() and w.notice.level == "error"  # both conditions shown
    assert w.open_file(clip) and w.source is not None
    assert not w.cloak_button.isEnabled() and w.start_cloak() is None
    assert "model is missing" in w.banner.text()


def test_no_audio_device_state(qtbot, clip, no_sd):
    w = make_window(qtbot)
    assert w.no_device and "No audio device" in w.notice.text() and "PortAudio" in w.notice.text()
    assert not w.record_button.isEnabled() and not w.start_recording()
    assert w.open_file(clip)  # files still work
    assert not w.play("original") and "Cannot play" in w.banner.text()
    w.stop_playback()  # no crash either


def test_speakers_without_microphone(qtbot, monkeypatch, clip):
    fake = FakeSoundDevice(inputs=0)
    monkeypatch.setattr(audio_device, "_sounddevice", lambda: fake)
    w = make_window(qtbot)
    assert "no microphone found" in w.notice.text() and not w.record_button.isEnabled()
    assert w.open_file(clip) and w.play("original") and len(fake.played) == 1


def test_drop_a_file_onto_the_window(qtbot, clip, fake_sd):
    w = make_window(qtbot)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(clip))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    w.dropEvent(event)
    assert w.source is not None and w.source.path == clip


# --------------------------------------------------------------------------- recording
def test_record_from_fake_microphone_then_cloak_and_save(qtbot, model, emodb_file, monkeypatch, tmp_path):
    samples, sr = sf.read(str(emodb_file), dtype="float32")
    fake = FakeSoundDevice(samples, sr)
    monkeypatch.setattr(audio_device, "_sounddevice", lambda: fake)
    w = make_window(qtbot, model)
    assert w.device_combo.currentText() == "Fake microphone" and w.record_button.isEnabled()

    qtbot.mouseClick(w.record_button, Qt.LeftButton)
    assert w.recorder is not None and "Stop" in w.record_button.text() and not w.cloak_button.isEnabled()
    qtbot.waitUntil(lambda: w.level_meter.value() > 0, timeout=5_000)
    qtbot.waitUntil(lambda: w.recorder.seconds >= len(samples) / sr, timeout=10_000)
    with qtbot.waitSignal(w.predicted, timeout=20_000):
        qtbot.mouseClick(w.record_button, Qt.LeftButton)
    assert w.recorder is None and w.source.path is None and w.source.name.startswith("recording")
    assert w.source.info.samplerate == sr and w.source.data.shape[0] == len(samples)

    w.set_mode("subtle")
    w.set_strength("high")
    assert cloak(qtbot, w) == "finished"
    assert w.emotion_after is not None and w.cloaked.shape == w.source.data.shape
    dest = w.save_to(session.default_save_path(w.source, tmp_path))
    assert dest == tmp_path / "recording.cloaked.wav"
    data, rate = sf.read(str(dest), dtype="float32")
    assert rate == sr and len(data) == len(samples)


def test_too_short_recording_is_refused(qtbot, monkeypatch):
    fake = FakeSoundDevice(np.full(800, 0.2, np.float32))  # 50 ms
    monkeypatch.setattr(audio_device, "_sounddevice", lambda: fake)
    w = make_window(qtbot)
    assert w.start_recording()
    qtbot.waitUntil(lambda: w.recorder.seconds > 0, timeout=5_000)
    time.sleep(0.05)
    assert not w.stop_recording()
    assert "too short" in w.banner.text() and w.source is None and w.record_button.isEnabled()


def test_qt_calls_keep_references_to_none_and_true():
    """Regression: PySide6-Essentials 6.12.0 on CPython < 3.12 drops a reference to None per void
    call and to True per ``emit`` until the interpreter aborts (``none_dealloc``); pyproject.toml
    excludes it there. Runs in a fresh interpreter, so a bad release fails here instead of
    killing the test session."""
    probe = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QObject, Signal

        class Pinger(QObject):
            ping = Signal(int, int)

        obj = Pinger()
        none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
        for i in range(20_000):  # None has ~5,000 references in a fresh interpreter, True ~600
            obj.setObjectName("x")
            obj.ping.emit(i, i)
        print(none_before - sys.getrefcount(None), true_before - sys.getrefcount(True))
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    lost_none, lost_true = map(int, proc.stdout.split())
    assert lost_none < 100 and lost_true < 100
