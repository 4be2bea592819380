"""The main window: wires session steps, workers, the audio device and the displays together.

Everything a person can do is a public method (``open_file``, ``start_recording``,
``start_cloak``, ``cancel_cloak``, ``play``, ``save_to`` ...) so tests drive the window the
way the buttons do. Problems are shown in the window (banner or status bar), never raised.
"""
from __future__ import annotations

import html
import logging
import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QMainWindow,
    QProgressBar, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget,
)
from torch import nn

from cloak.audio import AudioError
from cloak.chain import DEFAULT_MODE, MODES, Mode
from cloak.cloaker import DEFAULT_STRENGTH, STRENGTHS, CloakConfig

from . import audio_device, readout, session, worker
from .plots import AudioPlots
from .session import Source
from .widgets import Banner, ProbabilityBars

log = logging.getLogger(__name__)

AUDIO_FILTER = "Audio files (*.wav *.flac *.ogg *.aiff *.aif *.au *.caf *.mp3);;All files (*)"
MAX_RECORD_S = 300.0
METER_INTERVAL_MS = 50


class MainWindow(QMainWindow):
    """Open or record a voice, cloak it in the background, compare, listen and save."""

    predicted = Signal(object)  # probabilities of a newly loaded source are on display
    cloak_ended = Signal(str)  # "finished", "failed" or "cancelled"
    readout_ended = Signal(str)  # the independent readout after a cloak: "finished", "failed" or "cancelled"

    def __init__(self, model: nn.Module | None = None, model_error: str | None = None,
                 judge: str = readout.DEFAULT_JUDGE) -> None:
        super().__init__()
        self.model = model
        self.judge = judge  # the independent recognizer of the readout; never used to craft
        self.source: Source | None = None
        self.cloaked: np.ndarray | None = None
        self.report = None
        self.readout: readout.Readout | None = None
        self.cloak_seconds: float | None = None  # wall time of the last cloak inside the worker
        self.last_dir: Path | None = None
        self.recorder: audio_device.Recorder | None = None
        self._jobs: list[tuple[QThread, worker.Worker]] = []
        self._cloak_worker: worker.CloakWorker | None = None
        self._predict_worker: worker.PredictWorker | None = None
        self._readout_worker: worker.ReadoutWorker | None = None
        self._cloak_message = ""  # the banner after the last cloak, refined when the readout arrives
        self.setWindowTitle("cloak — hide the emotion in your voice")
        self.resize(1200, 800)
        self.setAcceptDrops(True)
        self._build()
        self._meter_timer = QTimer(self, interval=METER_INTERVAL_MS, timeout=self._update_meter)
        self._notices: dict[str, tuple[str, str]] = {}
        if model is None:
            self.set_notice("model", f"Model missing: {model_error or 'no recognizer loaded'}. You can open, "
                            "record and play audio, but cloaking is disabled until the model is installed "
                            "(cloak train --out models/emodb_cnn.pt).", "error")
        self.refresh_devices()
        self._update_actions()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open…", self, shortcut=QKeySequence.Open, triggered=self.choose_file)
        self.save_action = QAction("&Save cloaked as…", self, shortcut=QKeySequence.Save, triggered=self.choose_save)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.Quit, triggered=self.close)
        for a in (self.open_action, self.save_action):
            menu.addAction(a)
        menu.addSeparator()
        menu.addAction(quit_action)

        central = QWidget(self)
        root = QVBoxLayout(central)
        root.setContentsMargins(10, 8, 10, 6)
        self.notice = Banner(central)  # lasting conditions: model missing, no audio device
        self.banner = Banner(central)  # outcome of the last action
        root.addWidget(self.notice)
        root.addWidget(self.banner)
        body = QHBoxLayout()
        root.addLayout(body, 1)
        left = QVBoxLayout()
        body.addLayout(left, 0)
        right = QVBoxLayout()
        body.addLayout(right, 1)
        self.setCentralWidget(central)

        # --- source
        box = QGroupBox("Audio")
        lay = QVBoxLayout(box)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open file…", clicked=self.choose_file)
        self.record_button = QPushButton("● Record", clicked=self.toggle_recording)
        row.addWidget(self.open_button)
        row.addWidget(self.record_button)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.device_combo = QComboBox()
        self.device_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setMinimumContentsLength(18)
        row.addWidget(QLabel("Mic:"))
        row.addWidget(self.device_combo, 1)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.level_meter = QProgressBar(maximum=100, textVisible=False)
        self.level_meter.setFixedHeight(10)
        self.record_time = QLabel("")
        row.addWidget(self.level_meter, 1)
        row.addWidget(self.record_time)
        lay.addLayout(row)
        self.source_label = QLabel("No audio yet — open a file, drop one here, or record.")
        self.source_label.setWordWrap(True)
        lay.addWidget(self.source_label)
        left.addWidget(box)

        # --- mode
        box = QGroupBox("Mode")
        lay = QVBoxLayout(box)
        self.mode_combo = QComboBox()
        for name, mode in MODES.items():
            self.mode_combo.addItem(name, name)
            self.mode_combo.setItemData(self.mode_combo.count() - 1, mode.summary, Qt.ToolTipRole)
        self.mode_combo.setCurrentIndex(list(MODES).index(DEFAULT_MODE))
        lay.addWidget(self.mode_combo)
        self.mode_help = QLabel()
        self.mode_help.setWordWrap(True)
        self.mode_help.setStyleSheet("color:#555")
        lay.addWidget(self.mode_help)
        row = QHBoxLayout()
        preset = next(m.neutralize.strength for m in MODES.values() if m.neutralize is not None)
        self.calm_slider = QSlider(Qt.Horizontal, minimum=0, maximum=100, value=round(100 * preset),
                                   singleStep=5, pageStep=10)
        self.calm_slider.setToolTip(f"How far toward a calm delivery: 0 % is the vocoder alone (no change of "
                                    f"delivery), 100 % moves every cue all the way; the preset is {preset:.0%}")
        self.calm_value = QLabel()
        self.calm_value.setMinimumWidth(40)
        self.calm_slider.valueChanged.connect(lambda v: self.calm_value.setText(f"{v} %"))
        self.calm_label = QLabel("Calm")
        row.addWidget(self.calm_label)
        row.addWidget(self.calm_slider, 1)
        row.addWidget(self.calm_value)
        lay.addLayout(row)
        self.loudness_check = QCheckBox("Flatten loudness too")
        self.loudness_check.setToolTip("Even out loud and soft stretches as well: hides the emotion from more "
                                       "recognizers, but words come through less clearly (README: the ablation)")
        lay.addWidget(self.loudness_check)
        self.bands_check = QCheckBox(f"Moving equalizer (±{session.BAND_GAIN_DB:g} dB)")
        self.bands_check.setToolTip("Also move the balance of frequency bands slightly, crafted against cloak's "
                                    "own recognizer while a words guard keeps what speech-to-text hears: reaches "
                                    "other recognizers too, a little less like your voice, slower (README)")
        lay.addWidget(self.bands_check)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        left.addWidget(box)

        # --- strength
        box = QGroupBox("Attack strength (subtle, thorough)")
        self.strength_box = box
        lay = QVBoxLayout(box)
        self.strength_combo = QComboBox()
        for name, cfg in STRENGTHS.items():
            self.strength_combo.addItem(f"{name} — {cfg.steps} steps, ~{cfg.snr_db:g} dB SNR", name)
        self.strength_combo.setCurrentIndex(list(STRENGTHS).index(DEFAULT_STRENGTH))
        self.strength_combo.currentIndexChanged.connect(self._preset_changed)
        lay.addWidget(self.strength_combo)
        self.advanced = QGroupBox("Advanced", checkable=True, checked=False)
        form = QFormLayout(self.advanced)
        self.steps_spin = QSpinBox(minimum=1, maximum=100_000)
        self.epsilon_spin = QDoubleSpinBox(minimum=0.0, maximum=1.0, decimals=4, singleStep=0.001)
        self.epsilon_spin.setSpecialValueText("off")
        self.snr_spin = QDoubleSpinBox(minimum=0.0, maximum=80.0, decimals=1, singleStep=1.0, suffix=" dB")
        self.snr_spin.setSpecialValueText("off")
        self.steps_spin.setToolTip("Attack iterations: more is stronger and slower")
        self.epsilon_spin.setToolTip("Cap on the perturbation, full-scale amplitude (off = only the SNR budget)")
        self.snr_spin.setToolTip("Never add more noise than this signal-to-noise ratio (off = no floor)")
        form.addRow("Steps", self.steps_spin)
        form.addRow("Epsilon", self.epsilon_spin)
        form.addRow("SNR floor", self.snr_spin)
        lay.addWidget(self.advanced)
        left.addWidget(box)
        self._preset_changed()
        self.calm_value.setText(f"{self.calm_slider.value()} %")
        self._describe_mode()

        # --- cloak
        box = QGroupBox("Cloak")
        lay = QVBoxLayout(box)
        row = QHBoxLayout()
        self.cloak_button = QPushButton("Cloak", clicked=self.start_cloak)
        self.cloak_button.setStyleSheet("QPushButton { font-weight: bold; padding: 6px 18px; }")
        self.cancel_button = QPushButton("Cancel", clicked=self.cancel_cloak)
        row.addWidget(self.cloak_button, 1)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.progress_bar = QProgressBar(maximum=1, value=0, format="")
        lay.addWidget(self.progress_bar)
        left.addWidget(box)

        # --- listen and save
        box = QGroupBox("Listen and save")
        lay = QVBoxLayout(box)
        row = QHBoxLayout()
        self.play_original_button = QPushButton("▶ Original", clicked=lambda: self.play("original"))
        self.play_cloaked_button = QPushButton("▶ Cloaked", clicked=lambda: self.play("cloaked"))
        self.stop_button = QPushButton("■ Stop", clicked=self.stop_playback)
        for b in (self.play_original_button, self.play_cloaked_button, self.stop_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.save_button = QPushButton("Save cloaked as…", clicked=self.choose_save)
        lay.addWidget(self.save_button)
        left.addWidget(box)
        left.addStretch(1)
        for i in range(left.count()):
            w = left.itemAt(i).widget()
            if w is not None:
                w.setFixedWidth(340)

        # --- results: cloak's own recognizer beside an independent judge, then the voice's quality
        row = QHBoxLayout()
        self.bars, self.result_label = _readout_box(
            row, "What cloak's own recognizer hears",
            "The surrogate model the cloak works with (the subtle attack crafts its noise against it)")
        self.judge_bars, self.judge_label = _readout_box(
            row, f"What an independent judge hears — {self.judge}",
            "An emotion recognizer of another family, trained apart; it never helped craft the cloak")
        right.addLayout(row)
        self.quality_label = QLabel("")
        self.quality_label.setWordWrap(True)
        self.quality_label.setToolTip("Speaker similarity: cosine of GE2E voice embeddings (resemblyzer), "
                                      "1 = the same voice. DNSMOS P.835 OVRL: predicted overall listening "
                                      "quality, 1-5, with no reference (scored on non-overlapping 9 s windows). "
                                      "Words: what Whisper base hears in each, and their word error rate.")
        right.addWidget(self.quality_label)
        self.plots = AudioPlots(self)
        right.addWidget(self.plots, 1)
        self._clear_readout()
        self.statusBar().showMessage("Ready")

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        return self._cloak_worker is not None

    @property
    def emotion_before(self) -> str | None:
        """Top emotion shown for the original audio (``None`` when nothing is shown)."""
        return ProbabilityBars.top(self.bars.before)

    @property
    def emotion_after(self) -> str | None:
        """Top emotion shown for the cloaked audio."""
        return ProbabilityBars.top(self.bars.after)

    @property
    def judge_before(self) -> str | None:
        """Top emotion the independent judge hears in the original (``None`` until a readout)."""
        return ProbabilityBars.top(self.judge_bars.before)

    @property
    def judge_after(self) -> str | None:
        """Top emotion the independent judge hears in the cloaked audio."""
        return ProbabilityBars.top(self.judge_bars.after)

    def _update_actions(self) -> None:
        recording = self.recorder is not None
        idle = not self.busy and not recording
        has_mic = self.device_combo.currentData() is not None
        self.open_button.setEnabled(idle)
        self.open_action.setEnabled(idle)
        self.record_button.setEnabled(not self.busy and (has_mic or recording))
        self.record_button.setText("■ Stop recording" if recording else "● Record")
        self.device_combo.setEnabled(has_mic and idle)
        self.cloak_button.setEnabled(idle and self.source is not None and self.model is not None)
        self.cancel_button.setEnabled(self.busy)
        mode = MODES[self.mode_combo.currentData()]
        self.mode_combo.setEnabled(not self.busy)
        for w in (self.calm_label, self.calm_slider, self.calm_value, self.loudness_check, self.bands_check):
            w.setEnabled(not self.busy and mode.neutralize is not None)
        self.strength_box.setEnabled(not self.busy and mode.attack is not None)
        self.play_original_button.setEnabled(self.source is not None and not recording)
        self.play_cloaked_button.setEnabled(self.cloaked is not None and not recording)
        self.save_button.setEnabled(self.cloaked is not None and idle)
        self.save_action.setEnabled(self.cloaked is not None and idle)

    def show_error(self, text: str) -> None:
        self.banner.show_message(text, "error")
        self.statusBar().showMessage(text, 8000)

    def refresh_devices(self) -> None:
        """Fill the microphone list; without devices, say so and keep working with files."""
        self.device_combo.clear()
        try:
            devices = audio_device.input_devices()
        except audio_device.DeviceError as e:
            self.device_combo.addItem("no microphone")
            self.device_combo.setEnabled(False)
            self.set_notice("device", f"No audio device: {e}. Recording and playback are unavailable; "
                            "opening, cloaking and saving files still work.", "warning")
            self.no_device = True
            return
        self.no_device = False
        self.device_combo.setEnabled(True)
        for d in devices:
            self.device_combo.addItem(d.name, d)
        self.set_notice("device", "")

    def set_notice(self, key: str, text: str, level: str = "warning") -> None:
        """Lasting conditions (model missing, no audio device), one line each, worst level wins."""
        if text:
            self._notices[key] = (text, level)
        else:
            self._notices.pop(key, None)
        order = ("info", "success", "warning", "error")
        worst = max((lv for _, lv in self._notices.values()), key=order.index, default="info")
        self.notice.show_message("\n".join(t for t, _ in self._notices.values()), worst)

    # ------------------------------------------------------------------ source
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", str(self.last_dir or ""), AUDIO_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> bool:
        """Load ``path``; a bad file leaves the current audio alone and shows why."""
        if self.busy or self.recorder is not None:
            return False
        try:
            src = session.load_source(path)
        except AudioError as e:
            self.show_error(f"Cannot open this file — {e}")
            return False
        self.last_dir = Path(path).resolve().parent
        self._set_source(src)
        return True

    def _set_source(self, src: Source) -> None:
        self.stop_playback()
        self.source, self.cloaked, self.report = src, None, None
        self.source_label.setText(f"<b>{src.name}</b><br>{src.describe()}")
        self.banner.clear_message()
        self.bars.set_probabilities()
        self.result_label.setText("")
        self._clear_readout()
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("")
        self.plots.show_audio(src.data, src.info.samplerate)
        self.statusBar().showMessage(f"Loaded {src.name}", 5000)
        self._predict()
        self._update_actions()

    def _predict(self) -> None:
        if self.model is None or self.source is None:
            return
        if self._predict_worker is not None:
            self._predict_worker.cancel()
        w = worker.PredictWorker(self.model, self._config_or_preset(), self.source.data, self.source.info.samplerate)
        w.finished.connect(self._predicted)
        w.failed.connect(self._predict_failed)
        self._predict_worker = w
        self._launch(w)

    @Slot(object)
    def _predicted(self, probs: dict) -> None:
        if self.sender() is not self._predict_worker:
            return  # a newer source replaced it
        self._predict_worker = None
        if self.cloaked is None:
            self.bars.set_probabilities(probs)
            top = ProbabilityBars.top(probs)
            self.result_label.setText(f"Before cloaking the recognizer hears <b>{top}</b> ({probs[top]:.0%}).")
        self.predicted.emit(probs)

    @Slot(str)
    def _predict_failed(self, message: str) -> None:
        if self.sender() is self._predict_worker:
            self._predict_worker = None
            self.show_error(f"Recognizer failed: {message}")

    # ------------------------------------------------------------------ recording
    def toggle_recording(self) -> None:
        if self.recorder is None:
            self.start_recording()
        else:
            self.stop_recording()

    def start_recording(self) -> bool:
        if self.busy or self.recorder is not None:
            return False
        dev = self.device_combo.currentData()
        if dev is None:
            self.show_error("No microphone to record from.")
            return False
        self.stop_playback()
        try:
            self.recorder = audio_device.Recorder(dev.index, dev.samplerate)
        except audio_device.DeviceError as e:
            self.show_error(f"Cannot record: {e}")
            return False
        self.banner.show_message(f"Recording from {dev.name}… press Stop when done.", "info")
        self._meter_timer.start()
        self._update_actions()
        return True

    @Slot()
    def _update_meter(self) -> None:
        rec = self.recorder
        if rec is None:
            return
        self.level_meter.setValue(int(round(100 * min(1.0, rec.level))))
        self.record_time.setText(f"{rec.seconds:5.1f} s")
        if rec.seconds >= MAX_RECORD_S:
            self.stop_recording()

    def stop_recording(self) -> bool:
        """Stop and use the recording as the source; ``False`` if it is unusable (message shown)."""
        rec, self.recorder = self.recorder, None
        self._meter_timer.stop()
        self.level_meter.setValue(0)
        if rec is None:
            return False
        samples = rec.stop()
        self.record_time.setText(f"{len(samples) / rec.samplerate:5.1f} s")
        try:
            src = session.source_from_recording(samples, rec.samplerate)
        except AudioError as e:
            self.show_error(f"Recording not usable — {e}")
            self._update_actions()
            return False
        self._set_source(src)
        return True

    # ------------------------------------------------------------------ cloaking
    def _describe_mode(self) -> None:
        mode = MODES[self.mode_combo.currentData()]
        self.mode_help.setText(mode.summary[:1].upper() + mode.summary[1:] + ".")
        self.mode_combo.setToolTip(mode.summary)

    def _mode_changed(self) -> None:
        self._describe_mode()
        self._update_actions()

    def mode(self) -> Mode:
        """The settings as a :class:`~cloak.chain.Mode` (``ValueError`` for bad values)."""
        name = self.mode_combo.currentData()
        attack = self.config() if MODES[name].attack is not None else None
        return session.make_mode(name, calm=self.calm_slider.value() / 100, attack=attack,
                                 flatten_loudness=self.loudness_check.isChecked(),
                                 band_gain=session.BAND_GAIN_DB if self.bands_check.isChecked() else None)

    def set_mode(self, name: str, calm: float | None = None) -> None:
        """Choose a mode and, for a neutralizing one, how calm (0..1) the delivery becomes."""
        self.mode_combo.setCurrentIndex(list(MODES).index(name))
        if calm is not None:
            self.calm_slider.setValue(round(100 * calm))

    def _preset_changed(self) -> None:
        cfg = STRENGTHS[self.strength_combo.currentData()]
        self.steps_spin.setValue(cfg.steps)
        self.epsilon_spin.setValue(cfg.epsilon or 0.0)
        self.snr_spin.setValue(cfg.min_snr_db or 0.0)

    def config(self) -> CloakConfig:
        """The settings as a :class:`CloakConfig` (``ValueError`` for bad values)."""
        strength = self.strength_combo.currentData()
        if not self.advanced.isChecked():
            return session.make_config(strength)
        return session.make_config(strength, steps=self.steps_spin.value(),
                                   epsilon=self.epsilon_spin.value() or None,
                                   min_snr_db=self.snr_spin.value() or None)

    def _config_or_preset(self) -> CloakConfig:
        try:
            return self.config()
        except ValueError:
            return STRENGTHS[DEFAULT_STRENGTH]

    def set_strength(self, name: str, *, steps: int | None = None, epsilon: float | None = None,
                     min_snr_db: float | None = None) -> None:
        """Choose a preset and, when any override is given, turn on the advanced panel."""
        self.strength_combo.setCurrentIndex(list(STRENGTHS).index(name))
        overrides = (steps, epsilon, min_snr_db)
        self.advanced.setChecked(any(v is not None for v in overrides))
        if steps is not None:
            self.steps_spin.setValue(steps)
        if epsilon is not None:
            self.epsilon_spin.setValue(epsilon)
        if min_snr_db is not None:
            self.snr_spin.setValue(min_snr_db)

    def start_cloak(self) -> worker.CloakWorker | None:
        """Start cloaking in the background; returns the worker (``None`` if not possible)."""
        if self.busy or self.source is None:
            return None
        if self.model is None:
            self.show_error("Cannot cloak: the emotion model is missing.")
            return None
        try:
            mode = self.mode()
        except ValueError as e:
            self.show_error(f"Invalid settings — {e}")
            return None
        self.stop_playback()
        self._clear_readout()
        w = worker.CloakWorker(self.model, mode, self.source.data, self.source.info.samplerate)
        w.progress.connect(self._progress)
        w.finished.connect(self._cloaked)
        w.failed.connect(self._cloak_failed)
        w.cancelled.connect(self._cloak_cancelled)
        self._cloak_worker = w
        self.progress_bar.setValue(0)
        if mode.attack is not None and mode.neutralize is None:
            cfg = mode.attack
            self.progress_bar.setRange(0, max(1, cfg.steps))
            self.progress_bar.setFormat("%v / %m steps")
            what = f"{cfg.steps} steps, ~{cfg.snr_db:g} dB SNR"
        else:
            self.progress_bar.setRange(0, 100)
            self.progress_bar.setFormat("%p %")
            what = f"{mode.name}, calm {self.calm_slider.value()} %"
        self.banner.show_message(f"Cloaking {self.source.name} ({what})…", "info")
        self._update_actions()
        self._launch(w)
        return w

    def cancel_cloak(self) -> None:
        if self._cloak_worker is not None:
            self._cloak_worker.cancel()
            self.cancel_button.setEnabled(False)
            self.statusBar().showMessage("Cancelling…")

    @Slot(int, int)
    def _progress(self, done: int, total: int) -> None:
        if self.progress_bar.maximum() != total:
            self.progress_bar.setMaximum(total)
        self.progress_bar.setValue(done)

    @Slot(object)
    def _cloaked(self, result: worker.CloakResult) -> None:
        self._cloak_worker = None
        self.cloaked, self.report, self.cloak_seconds = result.cloaked, result.report, result.seconds
        r = result.report
        self.bars.set_probabilities(r.probs_before, r.probs_after)
        self.progress_bar.setValue(self.progress_bar.maximum())
        self.plots.show_audio(self.source.data, self.source.info.samplerate, self.cloaked)
        before, after = r.emotion_before, r.emotion_after
        if r.duration_out_s is None:
            change = f"SNR {r.snr_db:.1f} dB · {r.steps} steps · {r.duration_s:.1f} s of audio"
        else:
            change = f"{r.mode} mode · {r.duration_s:.2f} s → {r.duration_out_s:.2f} s of audio"
        self.result_label.setText(
            f"Before: <b>{before}</b> ({r.probs_before[before]:.0%})<br>"
            f"After: <b>{after}</b> ({r.probs_after[after]:.0%})<br>"
            f"<span style='color:#555'>{change} · cloaked in {result.seconds:.1f} s</span>")
        if before != after:
            self._cloak_message = (f"Cloaked. cloak's own recognizer now hears “{after}” instead of “{before}”. "
                                   "Listen to compare, then save.")
            self.banner.show_message(self._cloak_message, "success")
        elif r.duration_out_s is None:  # subtle: fooling the surrogate is all the attack does
            self._cloak_message = (f"Cloaked, but cloak's own recognizer still hears “{before}”. "
                                   "Try a higher strength or more steps.")
            self.banner.show_message(self._cloak_message, "warning")
        else:  # the neutralizing modes: the independent judge's verdict follows
            self._cloak_message = f"Cloaked. cloak's own recognizer still hears “{before}”."
            self.banner.show_message(self._cloak_message, "info")
        self.statusBar().showMessage(f"Cloaked in {result.seconds:.1f} s", 8000)
        self._update_actions()
        self.cloak_ended.emit("finished")
        self._start_readout()

    @Slot(str)
    def _cloak_failed(self, message: str) -> None:
        self._cloak_worker = None
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("")
        self.show_error(f"Cloaking failed — {message}")
        self._update_actions()
        self.cloak_ended.emit("failed")

    @Slot()
    def _cloak_cancelled(self) -> None:
        self._cloak_worker = None
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("")
        self.banner.show_message("Cloaking cancelled; nothing was changed.", "info")
        self.statusBar().showMessage("Cancelled", 5000)
        self._update_actions()
        self.cloak_ended.emit("cancelled")

    # ------------------------------------------------------------------ independent readout
    def _clear_readout(self) -> None:
        if self._readout_worker is not None:
            self._readout_worker.cancel()
            self._readout_worker = None
            self.readout_ended.emit("cancelled")
        self.readout = None
        self.judge_bars.set_probabilities()
        self.judge_label.setText(f"After cloaking, <b>{self.judge}</b> scores the original and the cloaked "
                                 "audio. It never helped craft the cloak, so it shows what other "
                                 "recognizers are likely to hear.")
        self.quality_label.setText("")

    def _start_readout(self) -> None:
        w = worker.ReadoutWorker(self.source.data, self.cloaked, self.source.info.samplerate, self.judge)
        w.finished.connect(self._readout_done)
        w.failed.connect(self._readout_failed)
        self._readout_worker = w
        self.judge_label.setText(f"Asking <b>{self.judge}</b>, and measuring the voice…")
        self._launch(w)

    @Slot(object)
    def _readout_done(self, result: readout.Readout) -> None:
        if self.sender() is not self._readout_worker:
            return  # a newer source or cloak replaced it
        self._readout_worker = None
        self.readout = r = result
        na = lambda part: f"n/a ({r.missing[part]})"  # noqa: E731
        honest = (f"<span style='color:#555'><b>{r.judge}</b>{' — ' + r.judge_family if r.judge_family else ''}. "
                  "It never helped craft the cloak.</span>")
        if r.judge_before is not None:
            if tuple(r.judge_before) != self.judge_bars.classes:
                self.judge_bars.classes = tuple(r.judge_before)
                self.judge_bars.setMinimumHeight(self.judge_bars.sizeHint().height())
            self.judge_bars.set_probabilities(r.judge_before, r.judge_after)
            jb, ja = self.judge_before, self.judge_after
            self.judge_label.setText(f"Before: <b>{jb}</b> ({r.judge_before[jb]:.0%})<br>"
                                     f"After: <b>{ja}</b> ({r.judge_after[ja]:.0%})<br>{honest}")
            verdict = (f"An independent judge ({r.judge}) now hears “{ja}” instead of “{jb}”." if ja != jb else
                       f"An independent judge ({r.judge}) still hears “{jb}”.")
            if self.banner.text() == self._cloak_message:  # nothing else happened since the cloak
                self.banner.show_message(f"{self._cloak_message} {verdict}", "success" if ja != jb else "warning")
        else:
            self.judge_label.setText(f"Judge: {na('judge')}<br>{honest}")
        sim = f"<b>{r.similarity:.2f}</b> (1 = the same voice)" if r.similarity is not None else na("speaker")
        mos = (f"<b>{r.dnsmos_before:.2f} → {r.dnsmos_after:.2f}</b> (1–5)" if r.dnsmos_after is not None
               else na("dnsmos"))
        self.quality_label.setText(f"Your voice afterwards — speaker similarity to the original: {sim} · "
                                   f"listening quality, DNSMOS OVRL: {mos}<br>{_words_line(r, na)}")
        self.readout_ended.emit("finished")

    @Slot(str)
    def _readout_failed(self, message: str) -> None:
        if self.sender() is not self._readout_worker:
            return
        self._readout_worker = None
        self.judge_label.setText(f"Independent readout failed: {message}")
        self.readout_ended.emit("failed")

    def _launch(self, w: worker.Worker) -> None:
        thread = worker.start(w)
        thread.finished.connect(self._thread_finished)
        self._jobs.append((thread, w))

    @Slot()
    def _thread_finished(self) -> None:
        # Dropping the last reference here would delete the QThread inside its own
        # finished() emission (heap corruption); let the emission return first.
        QTimer.singleShot(0, self._reap)

    @Slot()
    def _reap(self) -> None:
        self._jobs = [(t, w) for t, w in self._jobs if not t.isFinished()]

    # ------------------------------------------------------------------ playback
    def play(self, which: str) -> bool:
        """Play the ``"original"`` or ``"cloaked"`` audio (A/B); a message if there is no device."""
        data = self.source.data if (which == "original" and self.source) else self.cloaked if which == "cloaked" else None
        if data is None or self.source is None:
            return False
        try:
            audio_device.play(data, self.source.info.samplerate)
        except audio_device.DeviceError as e:
            self.show_error(f"Cannot play: {e}")
            return False
        self.statusBar().showMessage(f"Playing {which}", 3000)
        return True

    def stop_playback(self) -> None:
        audio_device.stop()

    # ------------------------------------------------------------------ saving
    def choose_save(self) -> None:
        if self.cloaked is None or self.source is None:
            return
        default = session.default_save_path(self.source, None if self.source.path else self.last_dir)
        path, _ = QFileDialog.getSaveFileName(self, "Save cloaked audio", str(default), AUDIO_FILTER)
        if path:
            self.save_to(path, overwrite=True)  # the dialog has already confirmed replacing

    def save_to(self, path: str | Path, overwrite: bool = False) -> Path | None:
        """Write the cloaked audio like the input; refuses the input file itself."""
        if self.cloaked is None or self.source is None:
            self.show_error("Nothing to save yet: cloak some audio first.")
            return None
        try:
            dest = session.save_cloaked(path, self.cloaked, self.source, overwrite=overwrite)
        except AudioError as e:
            self.show_error(f"Not saved — {e}")
            return None
        self.banner.show_message(f"Saved {dest}", "success")
        self.statusBar().showMessage(f"Saved {dest}", 8000)
        return dest

    # ------------------------------------------------------------------ Qt events
    def dragEnterEvent(self, event) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()) and not self.busy:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            self.open_file(files[0])
            event.acceptProposedAction()

    def closeEvent(self, event) -> None:
        if self.recorder is not None:
            self.recorder.stop()
            self.recorder = None
        self.stop_playback()
        for _, w in self._jobs:
            w.cancel()
        for thread, _ in self._jobs:  # a job stops at its next progress call; deleting a running QThread aborts
            thread.quit()
            thread.wait()
        self._jobs.clear()
        super().closeEvent(event)


__all__ = ["MainWindow"]


def _readout_box(row: QHBoxLayout, title: str, tip: str) -> tuple[ProbabilityBars, QLabel]:
    """A titled group with probability bars over a wrapped label, added to ``row``."""
    box = QGroupBox(title)
    box.setToolTip(tip)
    lay = QVBoxLayout(box)
    bars = ProbabilityBars()
    lay.addWidget(bars)
    label = QLabel("")
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignLeft | Qt.AlignTop)
    lay.addWidget(label, 1)
    row.addWidget(box, 1)
    return bars, label


def _words_line(r: readout.Readout, na) -> str:
    """The readout's words: what Whisper base hears before and after, and how many of them changed."""
    if r.words_before is None:
        return f"The words, as Whisper base hears them: {na('words')}"
    if math.isnan(r.words_changed):
        return "The words: Whisper base hears none in the original."
    quote = lambda text: html.escape(text.strip() or "(nothing)")  # noqa: E731
    return (f"The words, as Whisper base hears them: “{quote(r.words_before)}” → “{quote(r.words_after)}” "
            f"(<b>{r.words_changed:.0%}</b> changed)")
