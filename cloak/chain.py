"""Cloaking modes: a chain of stages (neutralize -> band gains -> attack) over one recording.

A mode is a preset: a list of stage configs, so an ablation is a mode with a stage left out.

- ``subtle``: the adversarial attack alone (imperceptible noise at ~35 dB SNR). It fools the
  surrogate and models like it; recognizers of other families read the emotion as well as
  through plain noise.
- ``neutral``: the neutralizer moves pitch, vocal effort, voice quality and speaking rate
  (loudness dynamics too, on request) toward a calm delivery, which every family of recognizer
  reads; the voice sounds calmer.
- ``thorough`` (default): the neutral mode with slow voices sped up further (``rate_gain`` 2,
  consonants retimed too), then the adversarial stage crafted with the words guard (Whisper keeps
  the words; its gradient taken once, at the start). It also hides from the big functional sets
  (ComParE) the neutral mode leaves, at four to five times the neutral mode's time (README: the
  thorough mode).

The neutral mode may add the band-gain stage (:mod:`cloak.bandgain`, ``--band-gain``): a slowly
moving equalizer crafted on the surrogate, which, unlike sample-level noise, reaches other families
too. It runs per neutralizer segment, so its words guard (:mod:`cloak.words`) can keep what Whisper
hears in the same stretch of the clean recording. Stages run in this order: neutralize -> band
gains -> sample-level attack.

The neutralizer re-synthesizes the voice (WORLD) at the file's rate up to :data:`MAX_WORK_RATE`,
in segments cut at pauses so memory stays bounded; the attack stage, when present, works at
16 kHz on the neutralized audio as :class:`cloak.cloaker.Cloaker` does on the original.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from cloak.audio import check_wave, resample, to_mono
from cloak.bandgain import BandGain, BandGainConfig
from cloak.cloaker import STRENGTHS, CloakConfig, Cloaker, CloakReport, make_report, snr_db
from cloak.emodb import EMOTIONS
from cloak.features import SAMPLE_RATE
from cloak.neutralizer import NeutralizeConfig, Neutralizer
from cloak.whisper_torch import MAX_SECONDS as GUARD_MAX_S
from cloak.words import Encoded, Transcript, WordsGuard

MAX_WORK_RATE = 24_000  # neutralizer rate cap: keeps speech up to 12 kHz, bounds WORLD's cost
SEGMENT_S = 20.0  # neutralize long recordings in segments of about this length ...
SEARCH_S = 5.0  # ... cut at the quietest 20 ms found within this many seconds before the mark
FADE_S = 0.02
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Mode:
    """A cloaking preset: which stages run, with which settings."""

    name: str
    summary: str
    neutralize: NeutralizeConfig | None = None
    attack: CloakConfig | None = None
    bands: BandGainConfig | None = None

    def __post_init__(self) -> None:
        if self.bands is not None and self.neutralize is None:
            raise ValueError(f"the band-gain stage runs on the neutralizer's output; mode {self.name!r} has none (use --mode neutral)")
        if self.attack is not None and self.attack.words > 0 and self.neutralize is None:
            raise ValueError(f"the words guard reads the neutralizer's segments; mode {self.name!r} has none (use --mode neutral)")

    @property
    def guarded(self) -> bool:
        """Whether a stage crafts with the words guard (Whisper base then helps craft)."""
        return any(stage is not None and stage.guarded for stage in (self.bands, self.attack))

    @property
    def keeps_timing(self) -> bool:
        """True when the output is the input plus a perturbation (same length, SNR meaningful)."""
        return self.neutralize is None

    def with_strength(self, strength: float) -> Mode:
        """This mode with the neutralizer's strength set (0 = vocoder alone, the control)."""
        if self.neutralize is None:
            raise ValueError(f"mode {self.name!r} has no neutralizer to set a strength for")
        return replace(self, neutralize=replace(self.neutralize, strength=strength))

    def with_settings(self, **changes: float) -> Mode:
        """This mode with neutralizer settings changed, e.g. ``effort=0.0`` to leave a cue out."""
        if self.neutralize is None:
            raise ValueError(f"mode {self.name!r} has no neutralizer settings to change")
        return replace(self, neutralize=replace(self.neutralize, **changes))

    def flatten_loudness(self) -> Mode:
        """This mode with the loudness cue on: loudness dynamics flattened as far as the strength says."""
        if self.neutralize is None:
            raise ValueError(f"flattening loudness needs a mode with a neutralizer, not {self.name!r}")
        return replace(self, neutralize=replace(self.neutralize, loudness=1.0))


MODES: dict[str, Mode] = {
    "subtle": Mode("subtle", "imperceptible noise; fools models like cloak's own surrogate, not other families",
                   attack=STRENGTHS["medium"]),
    "neutral": Mode("neutral", "calmer pitch, effort and pace; hides the emotion from other recognizers too",
                    neutralize=NeutralizeConfig()),
    "thorough": Mode("thorough", "neutral, slow voices retimed further, then an attack that keeps the words; "
                                 "hides from more recognizers, four to five times slower than neutral",
                     neutralize=NeutralizeConfig(rate_gain=2.0, consonant_pace=1.0, max_stretch=1.6),
                     attack=replace(STRENGTHS["medium"], words=1.0, words_every=10)),
}
DEFAULT_MODE = "thorough"


def split_points(wave: np.ndarray, sample_rate: int, segment_s: float = SEGMENT_S) -> list[int]:
    """Cut positions (samples) about ``segment_s`` apart, each at the quietest 20 ms nearby."""
    n, seg, search = len(wave), round(segment_s * sample_rate), round(SEARCH_S * sample_rate)
    hop = max(1, round(0.02 * sample_rate))
    cuts = [0]
    while n - cuts[-1] > seg + search:
        lo, hi = cuts[-1] + seg - search, cuts[-1] + seg
        frames = wave[lo:hi - (hi - lo) % hop].reshape(-1, hop)
        quiet = int(np.argmin((frames.astype(np.float64) ** 2).sum(axis=1)))
        cuts.append(lo + quiet * hop + hop // 2)
    return cuts + [n]


class Chain:
    """Run a :class:`Mode` on a recording.

    >>> out, report = Chain(load_recognizer(), MODES["neutral"]).cloak(wave, sample_rate)
    """

    def __init__(self, model: nn.Module, mode: Mode, device: str | torch.device = "cpu") -> None:
        self.mode = mode
        self.neutralizer = Neutralizer(mode.neutralize) if mode.neutralize is not None else None
        self.cloaker = Cloaker(model, mode.attack or CloakConfig(steps=0), device)
        self.bander = BandGain(model, mode.bands, device) if mode.bands is not None else None

    @property
    def steps(self) -> int:
        return self.mode.attack.steps if self.mode.attack else 0

    def cuts(self, mono: np.ndarray, sample_rate: int) -> list[int]:
        """Where the neutralizer cuts ``mono`` into segments: at pauses about :data:`SEGMENT_S` apart (less
        with the words guard, which reads a whole stretched segment, <= 30 s, at once)."""
        assert self.neutralizer is not None
        segment_s = SEGMENT_S
        if self.guard is not None:
            segment_s = min(SEGMENT_S, 0.95 * GUARD_MAX_S / self.neutralizer.config.max_stretch - SEARCH_S)
        return split_points(mono, sample_rate, segment_s)

    def neutralize(self, mono: np.ndarray, sample_rate: int, cuts: list[int], progress: Progress | None = None,
                   ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        """Neutralize float32 mono audio segment by segment (cut at ``cuts``, joined with short fades).

        Also returns each segment's ``(start, end)`` in the input and ``(start, end)`` in the output."""
        assert self.neutralizer is not None
        fade = round(FADE_S * sample_rate)
        out: list[np.ndarray] = []
        spans: list[tuple[int, int, int, int]] = []
        done = 0
        for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
            piece = self.neutralizer(mono[a:b], sample_rate)
            if out and fade and len(out[-1]) > fade and len(piece) > fade:
                ramp = np.linspace(0, 1, fade, dtype=np.float32)
                out[-1][-fade:] = out[-1][-fade:] * (1 - ramp) + piece[:fade] * ramp
                piece = piece[fade:]
            out.append(piece)
            spans.append((a, b, done, done + len(piece)))
            done += len(piece)
            if progress:
                progress(i + 1, len(cuts) - 1)
        return np.concatenate(out).astype(np.float32), spans

    def cloak(self, wave: np.ndarray, sample_rate: int, progress: Progress | None = None,
              ) -> tuple[np.ndarray, CloakReport]:
        """Cloak ``(frames,)`` or ``(frames, channels)`` audio at any rate.

        Returns float32 audio at ``sample_rate`` with the input's channels (the neutralizer works
        on the downmix, so every channel gets the same voice) and a report whose ``snr_db`` is NaN
        when the mode re-synthesizes the voice (a waveform SNR cannot judge that).
        """
        data = wave if wave.ndim == 2 else wave[:, None]
        check_wave(data, sample_rate)
        if self.neutralizer is None:
            out, report = self.cloaker.cloak(data, sample_rate, progress)
            report.mode = self.mode.name
            return (out if wave.ndim == 2 else out[:, 0]), report
        mono = to_mono(data)
        work_rate = min(sample_rate, MAX_WORK_RATE)
        stages = 1 + (self.bander is not None) + (self.steps > 0)
        report_stage = (lambda s: (lambda d, t: progress(s * 100 + round(100 * d / max(t, 1)), stages * 100))) if progress else None
        work = resample(mono, sample_rate, work_rate)
        cuts = self.cuts(work, work_rate)
        clean16 = resample(mono, sample_rate, SAMPLE_RATE)
        # The words guard transcribes the clean segments while the neutralizer works: both release the GIL.
        pool = ThreadPoolExecutor(1, thread_name_prefix="cloak-transcript")
        try:
            at16 = [round(c * SAMPLE_RATE / work_rate) for c in cuts]
            pending = [pool.submit(self.guard.transcript, clean16[a:b]) for a, b in zip(at16[:-1], at16[1:])
                       ] if self.guard is not None else None
            neutral, spans = self.neutralize(work, work_rate, cuts, report_stage(0) if report_stage else None)
            spans16 = self._spans16(spans, work_rate)
            begun = self._begin_attack_guard(neutral, work_rate, spans16, pending) if pending is not None else None
            words = [f.result() for f in pending] if pending is not None else None
        finally:
            pool.shutdown(cancel_futures=True)
        if self.bander is not None:
            n16 = resample(neutral, work_rate, SAMPLE_RATE)
            neutral = self._add16(neutral, self.band_gains(n16, spans16, words, report_stage(1) if report_stage else None),
                                  work_rate)
        if self.steps > 0:
            n16 = begun[0] if begun is not None else resample(neutral, work_rate, SAMPLE_RATE)
            neutral = self._add16(neutral, self.attack(n16, spans16, words, report_stage(stages - 1) if report_stage else None,
                                                       begun[1] if begun is not None else None), work_rate)
        out = resample(neutral, work_rate, sample_rate)
        before = self.surrogate_probs(clean16)
        after = self.surrogate_probs(resample(out, sample_rate, SAMPLE_RATE))
        out = np.repeat(out[:, None], data.shape[1], axis=1)
        report = make_report(data.shape[0] / sample_rate, self.steps, math.nan, before, after)
        report.mode = self.mode.name
        report.duration_out_s = out.shape[0] / sample_rate
        return (out if wave.ndim == 2 else out[:, 0]), report

    @property
    def guard(self) -> WordsGuard | None:
        """The words guard of whichever stage crafts with it (they share one Whisper), else None."""
        if self.bander is not None and self.bander.guard is not None:
            return self.bander.guard
        return self.cloaker.guard if self.steps > 0 else None

    @staticmethod
    def _spans16(spans: list[tuple[int, int, int, int]], rate: int) -> list[tuple[int, int, int, int | None]]:
        """Segment spans at ``rate`` as 16 kHz sample indices (the last output span open-ended)."""
        at16 = lambda i: round(i * SAMPLE_RATE / rate)  # noqa: E731
        return [(at16(a), at16(b), at16(oa), None if k == len(spans) - 1 else at16(ob))
                for k, (a, b, oa, ob) in enumerate(spans)]

    def band_gains(self, n16: np.ndarray, spans16: list[tuple[int, int, int, int | None]],
                   words: list[Transcript] | None, progress: Progress | None = None) -> np.ndarray:
        """The band-gain stage's change to the neutralized ``n16``, segment by segment; with the words
        guard on, each segment keeps ``words``, what Whisper hears in the same segment of the clean input."""
        assert self.bander is not None
        delta = np.zeros_like(n16)
        for k, (_, _, lo, hi) in enumerate(spans16):
            piece = n16[lo:hi]
            delta[lo:lo + len(piece)] = self.bander(piece, words=words[k] if words and self.bander.guard else None) - piece
            if progress:
                progress(k + 1, len(spans16))
        return delta

    def attack(self, n16: np.ndarray, spans16: list[tuple[int, int, int, int | None]],
               words: list[Transcript] | None, progress: Progress | None = None, begun: Encoded | None = None,
               ) -> np.ndarray:
        """The adversarial stage's perturbation of ``n16``: over the whole recording, or, with the words
        guard on, segment by segment, each keeping its ``words`` (``begun``: the first segment's first
        guard pass, from :meth:`_begin_attack_guard`)."""
        if self.cloaker.guard is None or words is None:
            return self.cloaker.perturbation(n16, progress)[0]
        delta = np.zeros_like(n16)
        steps = self.cloaker.config.steps
        for k, (_, _, lo, hi) in enumerate(spans16):
            piece = n16[lo:hi]
            step_cb = (lambda d, t, k=k: progress(k * steps + d, len(spans16) * steps)) if progress else None
            delta[lo:lo + len(piece)] = self.cloaker.perturbation(piece, step_cb, words=words[k],
                                                                  begun=begun if k == 0 else None)[0]
        return delta

    def _begin_attack_guard(self, neutral: np.ndarray, rate: int, spans16: list[tuple[int, int, int, int | None]],
                            pending: list[Future]) -> tuple[np.ndarray, Encoded] | None:
        """While the ``pending`` transcripts are still being made: the neutralized audio at 16 kHz and the
        attack's first guard pass on its first segment, begun (Whisper's encoder needs no words), on the
        cores the transcript leaves free. Only where the attack reads the neutralizer's output directly
        (no band gains between); one segment's graph at a time keeps memory bounded."""
        guard = self.cloaker.guard
        if self.bander is not None or guard is None:
            return None
        n16 = resample(neutral, rate, SAMPLE_RATE)
        _, _, lo, hi = spans16[0]
        busy = not all(f.done() for f in pending)  # the transcript holds one core (one thread, as the evaluator's)
        return n16, self.cloaker.begin_guard(n16[lo:hi], max(1, guard.threads - 1) if busy else None)

    @staticmethod
    def _add16(wave: np.ndarray, delta16: np.ndarray, rate: int) -> np.ndarray:
        """``wave`` (at ``rate``) plus a change computed at 16 kHz, resampled to ``rate``."""
        delta = resample(delta16, SAMPLE_RATE, rate)[: len(wave)]
        out = wave.copy()
        out[: len(delta)] += delta
        return out

    def surrogate_probs(self, wave16: np.ndarray) -> np.ndarray:
        """The surrogate's emotion distribution for 16 kHz mono audio (windows averaged)."""
        win = round(self.cloaker.config.window_s * SAMPLE_RATE)
        chunks = [wave16[s:s + win] for s in range(0, max(len(wave16) - win // 4, 1), win)] or [wave16]
        probs = np.zeros(len(EMOTIONS))
        model = self.cloaker.model
        with torch.no_grad():
            for c in chunks:
                x = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))[None].to(self.cloaker.device)
                probs += torch.softmax(model(x), -1)[0].cpu().numpy()
        return probs / len(chunks)


__all__ = ["Chain", "Mode", "MODES", "DEFAULT_MODE", "snr_db"]
