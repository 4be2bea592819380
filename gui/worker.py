"""Background jobs for the window: they know nothing of widgets and talk only through signals.

A worker is moved to a ``QThread`` by :func:`start`; its ``run`` slot does the work and emits
exactly one of ``finished(object)``, ``failed(str)`` or ``cancelled()``. :meth:`Worker.cancel`
may be called from any thread: the next progress callback raises :class:`Cancelled`, which
:class:`~cloak.chain.Chain` propagates.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, Signal, Slot
from torch import nn

from cloak.audio import to_model_rate
from cloak.chain import Chain, Mode
from cloak.cloaker import CloakConfig, Cloaker, CloakReport
from cloak.features import SAMPLE_RATE

from . import readout

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside the progress callback when the user asked to stop."""


def worker_threads() -> int:
    """Torch threads a job uses: all cores but one, which is left to the event loop.

    On a busy 2-core machine, two OpenMP threads plus the GUI thread oversubscribe the CPU
    and a cloak becomes several times slower (and the window stutters).
    """
    return max(1, (os.cpu_count() or 2) - 1)


def limit_torch_threads() -> int:
    """Apply :func:`worker_threads` (process-wide; the GUI thread itself runs no torch code)."""
    n = worker_threads()
    if torch.get_num_threads() > n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


@dataclass(frozen=True)
class CloakResult:
    cloaked: np.ndarray  # the input's rate and channels; its length differs when the mode re-synthesizes
    report: CloakReport
    seconds: float  # wall time of the cloak


class Worker(QObject):
    """Base: subclasses implement :meth:`work`; ``run`` turns its outcome into one signal."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def _report(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled
        self.progress.emit(done, total)

    def work(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        limit_torch_threads()
        try:
            if self._cancel.is_set():
                raise Cancelled
            result = self.work()
        except Cancelled:
            self.cancelled.emit()
        except Exception as e:  # shown in the window, never a traceback dialog
            log.exception("background job failed")
            self.failed.emit(str(e).splitlines()[0] if str(e) else type(e).__name__)
        else:
            self.finished.emit(result)


class CloakWorker(Worker):
    """``Chain(model, mode).cloak(wave, samplerate)`` with progress and cancel."""

    def __init__(self, model: nn.Module, mode: Mode, wave: np.ndarray, samplerate: int) -> None:
        super().__init__()
        self.model, self.mode, self.wave, self.samplerate = model, mode, wave, samplerate

    def work(self) -> CloakResult:
        t0 = time.perf_counter()
        cloaked, report = Chain(self.model, self.mode).cloak(self.wave, self.samplerate, progress=self._report)
        return CloakResult(cloaked, report, time.perf_counter() - t0)


class ReadoutWorker(Worker):
    """:func:`cloak.gui.readout.measure` on the clean and cloaked audio (any rate, any channels)."""

    def __init__(self, clean: np.ndarray, cloaked: np.ndarray, samplerate: int,
                 judge: str = readout.DEFAULT_JUDGE) -> None:
        super().__init__()
        self.clean, self.cloaked, self.samplerate, self.judge = clean, cloaked, samplerate, judge

    def work(self) -> readout.Readout:
        to16 = lambda x: to_model_rate(x.reshape(len(x), -1), self.samplerate, SAMPLE_RATE)  # noqa: E731
        return readout.measure(to16(self.clean), to16(self.cloaked), self.judge, progress=self._report)


class PredictWorker(Worker):
    """The recognizer's probabilities for a clip, windowed exactly as the cloaker does."""

    def __init__(self, model: nn.Module, config: CloakConfig, wave: np.ndarray, samplerate: int) -> None:
        super().__init__()
        self.model, self.config, self.wave, self.samplerate = model, replace(config, steps=0), wave, samplerate

    def work(self) -> dict[str, float]:
        _, report = Cloaker(self.model, self.config).cloak(self.wave, self.samplerate)
        return report.probs_before


def start(worker: Worker) -> QThread:
    """Run ``worker`` on a new ``QThread``; the thread quits after the worker's last signal.

    Keep references to both until ``thread.finished``.
    """
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    for sig in (worker.finished, worker.failed, worker.cancelled):
        sig.connect(thread.quit)
    thread.start()
    return thread
