"""Transfer bench: does a cloak hide the emotion from recognizers it never saw?

Every judge (:mod:`cloak.eval.judges`, never used to craft) scores the held-out clips of its
corpus in four conditions:

* ``clean`` -- the original audio;
* ``cloaked`` -- the mode at the chosen strength;
* ``noise`` -- white noise added at the cloak's own SNR when the mode keeps the waveform's timing
  (an equal-energy control), else at :data:`NOISE_SNR_DB`: a re-synthesized voice differs from
  the original mostly in phase, so its "noise energy" would measure nothing a listener hears;
* ``zero`` -- the same pipeline at strength zero (the vocoder alone; the identity for ``subtle``).

**Hiding ratio** = (clean acc - acc) / (clean acc - chance): 0 = nothing hidden, 1 = chance.
An effect counts only where the cloak clearly beats both controls: the 95 % paired-bootstrap
interval of (control acc - cloaked acc) lies above zero for each control.
Listener-side costs are measured on the same clips: DNSMOS P.835, speaker similarity to the
clean clip, Whisper-base WER (and PESQ-WB for modes that keep the timing).
Cloaked audio is cached per (mode settings, clip) under ``$CLOAK_CACHE/bench``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from cloak.bandgain import BandGainConfig
from cloak.chain import DEFAULT_MODE, MODES, Chain, Mode
from cloak.cloaker import STRENGTHS
from cloak.metrics import accuracy, uar
from cloak.model import load_recognizer

log = logging.getLogger(__name__)

CONDITIONS = ("clean", "cloaked", "noise", "zero")
NOISE_SNR_DB = 30.0
BOOTSTRAP = 2000
LANGUAGES = {"emodb": "de", "ravdess": "en"}
RAVDESS_TEXTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class BenchConfig:
    """What one bench run measures."""

    mode: str = DEFAULT_MODE
    strength: float | None = None  # neutralizer strength; None: the mode's own
    corpora: tuple[str, ...] = ("emodb", "ravdess")
    judges: tuple[str, ...] | None = None  # None: every shipped judge
    asr: bool = True
    quality: bool = True
    limit: int | None = None
    seed: int = 0
    overrides: tuple[tuple[str, float], ...] = ()  # neutralizer settings changed for an ablation
    attack: str | None = None  # add/replace the adversarial stage with this strength preset
    band_gain: float | None = None  # add the band-gain stage, up to this many dB per band
    band_control: bool = False  # ... with random signs instead of crafted gains (its control)
    words_guard: bool = True  # crafted stages on the neutralizer's output use the words guard (Whisper helps craft)


    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r} (choose from {', '.join(MODES)})")
        if self.strength is not None and not 0 <= self.strength <= 1:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        for c in self.corpora:
            if c not in LANGUAGES:
                raise ValueError(f"unknown corpus {c!r} (choose from {', '.join(LANGUAGES)})")

    def resolved_mode(self, strength: float | None = None, language: str | None = None) -> Mode:
        mode = MODES[self.mode]
        if self.overrides:
            mode = mode.with_settings(**dict(self.overrides))
        if self.attack is not None:
            mode = replace(mode, attack=STRENGTHS[self.attack])
        if mode.attack is not None and mode.neutralize is not None:  # crafted on the neutralizer's output: guarded
            mode = replace(mode, attack=replace(mode.attack, words=1.0 if self.words_guard else 0.0, language=language))
        if self.band_gain is not None:
            mode = replace(mode, bands=BandGainConfig(max_gain_db=self.band_gain, crafted=not self.band_control,
                                                      words=1.0 if self.words_guard else 0.0, language=language))
        s = self.strength if strength is None else strength
        if mode.neutralize is not None and s is not None:
            mode = mode.with_strength(s)
        return mode

    def zero_mode(self) -> Mode:
        mode = MODES[self.mode]
        if mode.neutralize is not None:
            return replace(mode.with_strength(0.0), attack=None, bands=None)
        return replace(mode, attack=replace(mode.attack, steps=0)) if mode.attack else mode


@dataclass
class Clips:
    """Clips of one corpus: waves at 16 kHz, labels, names, reference texts, speakers."""

    corpus: str
    names: list[str]
    waves: list[np.ndarray]
    labels: np.ndarray
    texts: list[str]
    speakers: list[str]


def held_out(corpus: str, limit: int | None = None) -> Clips:
    """The held-out clips of ``corpus`` (EmoDB 03+08; RAVDESS actors 17-20)."""
    from cloak.emodb import TEXTS, parse_name
    from cloak.eval.judges.data import corpus_clips, read_wave

    _, clips = corpus_clips(corpus)
    clips = clips[:limit] if limit else clips
    if corpus == "emodb":
        texts = [TEXTS[parse_name(c.path).text_code] for c in clips]
    else:
        texts = [RAVDESS_TEXTS[c.path.name.split("-")[4]] for c in clips]
    return Clips(corpus, [c.path.name for c in clips], [read_wave(c.path) for c in clips],
                 np.array([c.label for c in clips]), texts, [c.speaker for c in clips])


def mode_key(mode: Mode) -> str:
    """A short stable hash of a mode's settings and the code that shapes its output."""
    import cloak.bandgain
    import cloak.chain
    import cloak.cloaker
    import cloak.neutralizer
    import cloak.whisper_torch
    import cloak.words

    h = hashlib.sha256(json.dumps(asdict(mode), sort_keys=True, default=str).encode())
    modules = ((cloak.chain, cloak.cloaker) + ((cloak.neutralizer,) if mode.neutralize is not None else ())
               + ((cloak.bandgain,) if mode.bands is not None else ())
               + ((cloak.words, cloak.whisper_torch) if mode.guarded else ()))
    for m in modules:
        h.update(Path(m.__file__).read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    from cloak.whisper_bundle import cache_root

    return cache_root() / "bench"


@dataclass
class Timing:
    """Cloaking time and audio duration of the clips actually cloaked (not read from the cache)."""

    seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def realtime_factor(self) -> float | None:
        return self.seconds / self.audio_seconds if self.audio_seconds else None


def process(chain: Chain, clips: Clips, progress: Progress | None = None, what: str = "cloak",
            timing: Timing | None = None) -> list[np.ndarray]:
    """Each clip through ``chain`` at 16 kHz, cached on disk by mode and clip name; ``timing``
    adds up the clips cloaked here."""
    folder = cache_dir() / f"{chain.mode.name}-{mode_key(chain.mode)}"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (name, wave) in enumerate(zip(clips.names, clips.waves)):
        path = folder / f"{clips.corpus}-{name}.npy"
        if path.is_file():
            out.append(np.load(path, allow_pickle=False))
        else:
            t0 = time.perf_counter()
            y, _ = chain.cloak(wave, 16_000)
            if timing is not None:
                timing.seconds += time.perf_counter() - t0
                timing.audio_seconds += len(wave) / 16_000
            tmp = path.with_suffix(f".{os.getpid()}.part.npy")  # two bench runs may fill one cache at once
            np.save(tmp, y.astype(np.float32))
            tmp.replace(path)
            out.append(y.astype(np.float32))
        if progress:
            progress(what, i + 1, len(clips.names))
    return out


def add_noise(waves: Sequence[np.ndarray], snrs_db: Sequence[float], seed: int) -> list[np.ndarray]:
    """White Gaussian noise at each clip's SNR (energy over the whole clip)."""
    rng = np.random.default_rng(seed)
    out = []
    for w, snr in zip(waves, snrs_db):
        noise = rng.standard_normal(len(w)).astype(np.float32)
        scale = math.sqrt(float(np.mean(w.astype(np.float64) ** 2)) / 10 ** (snr / 10))
        out.append((w + scale * noise).astype(np.float32))
    return out


class ScoreCache:
    """Per-clip scores keyed by (scorer, audio content), appended to a JSON-lines file.

    Clean, noise and zero-strength audio is the same for every strength of a mode, so a frontier
    or a repeated run scores each of them once.
    """

    def __init__(self, path: Path | None) -> None:
        self.path, self.store = path, {}
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                    self.store[rec["k"]] = rec["v"]
                except (ValueError, KeyError):
                    continue  # a line cut short by an interrupted run

    @staticmethod
    def key(scorer: str, wave: np.ndarray) -> str:
        return scorer + ":" + hashlib.sha1(np.ascontiguousarray(wave, dtype=np.float32).tobytes()).hexdigest()

    def many(self, scorer: str, waves: Sequence[np.ndarray], compute: Callable[[list[np.ndarray]], list]) -> list:
        """Scores of ``waves`` under ``scorer``, computing (in one batch) only the missing ones."""
        keys = [self.key(scorer, w) for w in waves]
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        if missing:
            values = compute([waves[i] for i in missing])
            lines = []
            for i, v in zip(missing, values):
                v = np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
                self.store[keys[i]] = v
                lines.append(json.dumps({"k": keys[i], "v": v}))
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
        return [self.store[k] for k in keys]


def hiding_ratio(clean_acc: float, acc: float, chance: float) -> float:
    """(clean - acc) / (clean - chance); NaN when the judge is at chance on clean audio."""
    return (clean_acc - acc) / (clean_acc - chance) if clean_acc > chance else math.nan


def _resample(n_clips: int, seed: int, n: int) -> np.ndarray:
    """``(n, n_clips)`` clip indices drawn with replacement: one bootstrap resample per row."""
    return np.random.default_rng(seed).integers(0, n_clips, size=(n, n_clips))


def _middle_95(values: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def bootstrap_interval(better: np.ndarray, worse: np.ndarray, seed: int, n: int = BOOTSTRAP) -> tuple[float, float]:
    """95 % paired-bootstrap interval of mean(better) - mean(worse) over clips (per-clip hits or probabilities)."""
    diff = better.astype(np.float64) - worse.astype(np.float64)
    return _middle_95(diff[_resample(len(diff), seed, n)].mean(axis=1))


def ratio_increase_interval(before: np.ndarray, after: np.ndarray, words: np.ndarray, seed: int,
                            n: int = BOOTSTRAP) -> tuple[float, float]:
    """95 % paired-bootstrap interval of sum(after)/sum(words) - sum(before)/sum(words) over clips:
    how far a corpus-level rate such as WER (per-clip edits over reference words) rises."""
    idx = _resample(len(words), seed, n)
    diff = after.astype(np.float64) - before.astype(np.float64)
    return _middle_95(diff[idx].sum(axis=1) / words.astype(np.float64)[idx].sum(axis=1))


def hiding_interval(clean: np.ndarray, cloaked: np.ndarray, chance: float, seed: int,
                    n: int = BOOTSTRAP) -> tuple[float, float]:
    """95 % paired-bootstrap interval of the hiding ratio (clips resampled together for clean and cloaked)."""
    idx = _resample(len(clean), seed, n)
    c, k = clean.astype(np.float64)[idx].mean(axis=1), cloaked.astype(np.float64)[idx].mean(axis=1)
    ok = c > chance
    return _middle_95((c - k)[ok] / (c - chance)[ok]) if ok.any() else (math.nan, math.nan)


@dataclass
class JudgeResult:
    judge: str
    family: str
    corpus: str
    chance: float
    accuracy: dict[str, float] = field(default_factory=dict)
    uar: dict[str, float] = field(default_factory=dict)
    hiding: dict[str, float] = field(default_factory=dict)
    margin_ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # control acc - cloaked acc
    hiding_ci: tuple[float, float] = (math.nan, math.nan)  # 95 % bootstrap interval of hiding["cloaked"]
    # Mean probability the judge gives the true emotion, per condition, and the paired interval of
    # (control - cloaked): a finer reading than accuracy, which only counts the top class.
    confidence: dict[str, float] = field(default_factory=dict)
    confidence_margin_ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def beats_controls(self) -> bool:
        return all(lo > 0 for lo, _ in self.margin_ci.values())


def score_judge(judge, waves: dict[str, list[np.ndarray]], labels: np.ndarray, seed: int,
                scores: ScoreCache | None = None) -> JudgeResult:
    """One judge on every condition."""
    n_classes = len(judge.classes)
    res = JudgeResult(judge.name, judge.family, judge.corpus, 1.0 / n_classes)
    scores = scores or ScoreCache(None)
    hits, true_prob = {}, {}
    for cond, ws in waves.items():
        probs = np.asarray(scores.many(f"judge/{judge.name}", ws, lambda b: list(judge.predict_proba(b))))
        pred = probs.argmax(axis=1)
        hits[cond] = pred == labels
        true_prob[cond] = probs[np.arange(len(labels)), labels]
        res.accuracy[cond] = accuracy(labels, pred)
        res.confidence[cond] = float(true_prob[cond].mean())
        res.uar[cond] = uar(labels, pred, n_classes)
    for cond in waves:
        res.hiding[cond] = hiding_ratio(res.accuracy["clean"], res.accuracy[cond], res.chance)
    for control in ("noise", "zero"):
        if control in hits:
            res.margin_ci[control] = bootstrap_interval(hits[control], hits["cloaked"], seed)
            res.confidence_margin_ci[control] = bootstrap_interval(true_prob[control], true_prob["cloaked"], seed)
    if "cloaked" in hits:
        res.hiding_ci = hiding_interval(hits["clean"], hits["cloaked"], res.chance, seed)
    return res


def quality_figures(clips: Clips, waves: dict[str, list[np.ndarray]], mode: Mode, use_asr: bool,
                    progress: Progress | None = None, scores: ScoreCache | None = None, seed: int = 0) -> dict:
    """DNSMOS, speaker similarity, WER with the paired interval of its increase (and PESQ-WB when
    timing is kept) of clean vs cloaked."""
    from cloak.eval.quality import DNSMOS, SpeakerSimilarity, cosine, pesq_wb

    scores = scores or ScoreCache(None)
    out: dict = {}
    dnsmos = DNSMOS()
    for cond in ("clean", "cloaked", "noise", "zero"):
        sig_bak_ovrl = np.asarray(scores.many("dnsmos", waves[cond], lambda b: [
            [(s := dnsmos.score(w)).sig, s.bak, s.ovrl] for w in b]))
        for k, col in (("sig", 0), ("bak", 1), ("ovrl", 2)):
            out[f"dnsmos_{k}_{cond}"] = float(sig_bak_ovrl[:, col].mean())
        if progress:
            progress(f"dnsmos {cond}", 1, 1)
    spk = SpeakerSimilarity()
    embed = lambda ws: np.asarray(scores.many("ge2e", ws, lambda b: [spk.embed(w) for w in b]))  # noqa: E731
    ref = embed(waves["clean"])
    for cond in ("cloaked", "zero"):
        sims = [cosine(r, e) for r, e in zip(ref, embed(waves[cond]))]
        out[f"speaker_similarity_{cond}"] = float(np.mean(sims))
        out[f"speaker_similarity_min_{cond}"] = float(np.min(sims))
    if mode.keeps_timing:
        out["pesq_wb_cloaked"] = float(np.nanmean([pesq_wb(c, w) for c, w in zip(waves["clean"], waves["cloaked"])]))
    if use_asr:
        from cloak.eval.asr import SPHINX_LANGUAGES, CachedTranscriber, TranscriptCache, make_transcriber
        from cloak.eval.text import word_errors
        from cloak.whisper_bundle import cache_root

        language = LANGUAGES[clips.corpus]
        backends = [("whisper", "wer")]
        if language in SPHINX_LANGUAGES and importlib.util.find_spec("pocketsphinx") is not None:
            backends.append(("sphinx", "wer_sphinx"))  # an ASR that no stage crafts with
        for backend, key in backends:
            asr = CachedTranscriber(make_transcriber(backend, language=language),
                                    TranscriptCache(cache_root() / "transcripts.jsonl"))
            errors = {}
            for cond in ("clean", "cloaked"):
                hyps = []
                for i, w in enumerate(waves[cond]):
                    hyps.append(asr.transcribe(w, 16_000))
                    if progress:
                        progress(f"{backend} {cond}", i + 1, len(waves[cond]))
                errors[cond], words = word_errors(clips.texts, hyps)
                out[f"{key}_{cond}"] = float(errors[cond].sum() / words.sum())
            out[f"{key}_increase_ci"] = ratio_increase_interval(errors["clean"], errors["cloaked"], words, seed)
    return out


@dataclass
class CorpusResult:
    corpus: str
    n_clips: int
    noise_snr_db: float
    judges: list[JudgeResult]
    quality: dict


@dataclass
class BenchResult:
    config: BenchConfig
    mode: dict
    corpora: list[CorpusResult]
    seconds: float
    realtime_factor: float | None  # cloaking time / audio duration, one process; None: every clip from the cache


HELPED_CRAFT = " (helped craft this mode: not an independent judge of it)"


def helped_craft(mode: Mode) -> set[str]:
    """Judges of a family that crafts ``mode``: the Whisper-encoder probes when the words guard is on."""
    from cloak.eval.judges import REGISTRY

    if not mode.guarded:
        return set()
    return {name for name, (module, _, _) in REGISTRY.items() if module == "whisper_probe"}


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchResult:
    """Run the bench over every requested corpus; see the module docstring."""
    from cloak.eval.judges import available_judges, load_judge

    t0 = time.perf_counter()
    mode = config.resolved_mode()
    model = load_recognizer()
    zero = Chain(model, config.zero_mode())
    scores = ScoreCache(cache_dir() / "scores.jsonl")
    results, timing = [], Timing()
    for corpus in config.corpora:
        shipped = available_judges(corpus)
        names = [j for j in (config.judges or shipped) if j in shipped]
        if not names:
            log.warning("no judge for %s: skipped", corpus)
            continue
        clips = held_out(corpus, config.limit)
        chain = Chain(model, config.resolved_mode(language=LANGUAGES[corpus]))
        cloaked = process(chain, clips, progress, f"{corpus}: cloak", timing)
        waves = {"clean": clips.waves, "cloaked": cloaked, "zero": process(zero, clips, progress, f"{corpus}: zero")}
        if mode.keeps_timing:
            snrs = [10 * math.log10(float(np.sum(c.astype(np.float64) ** 2)) / max(float(np.sum((y - c).astype(np.float64) ** 2)), 1e-20))
                    for c, y in zip(clips.waves, cloaked)]
        else:
            snrs = [NOISE_SNR_DB] * len(cloaked)
        waves["noise"] = add_noise(clips.waves, snrs, config.seed)
        judged, crafted_by = [], helped_craft(mode)
        for name in names:
            judged.append(score_judge(load_judge(name), waves, clips.labels, config.seed, scores))
            if name in crafted_by:
                judged[-1].family += HELPED_CRAFT
            if progress:
                progress(f"{corpus}: judge {name}", 1, 1)
        quality = quality_figures(clips, waves, mode, config.asr, progress, scores, config.seed) if config.quality else {}
        results.append(CorpusResult(corpus, len(clips.names), float(np.mean(snrs)), judged, quality))
    return BenchResult(config, asdict(mode), results, time.perf_counter() - t0, timing.realtime_factor)


def format_result(result: BenchResult) -> str:
    """Markdown tables: per judge accuracy and hiding ratio by condition; the listener's costs."""
    cfg = result.config
    lines = [f"mode `{cfg.mode}`" + (f", strength {cfg.strength:g}" if cfg.strength is not None else "")
             + (f", attack stage {cfg.attack}" + (" (words guard on)" if MODES[cfg.mode].neutralize is not None
                                                   and cfg.words_guard else "") if cfg.attack else "")
             + (f", band gains ±{cfg.band_gain:g} dB" + (" (random signs: the control)" if cfg.band_control
                                                          else " (crafted, words guard on)" if cfg.words_guard else " (crafted)")
                if cfg.band_gain is not None else "")
             + "".join(f", {k}={v:g}" if isinstance(v, float) else f", {k}={v}" for k, v in cfg.overrides)
             + (f"; cloaking real-time factor {result.realtime_factor:.3f} (one process)" if result.realtime_factor is not None
                else "; cloaked audio from the cache (not timed)"), ""]
    for c in result.corpora:
        lines += [f"**{c.corpus}** held-out ({c.n_clips} clips; noise control at {c.noise_snr_db:.1f} dB SNR)", "",
                  "| judge | family | acc clean | acc cloaked | acc noise | acc zero | UAR clean | UAR cloaked "
                  "| hiding cloaked (95 % CI) | hiding noise | hiding zero | beats both controls |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for j in c.judges:
            a, h = j.accuracy, j.hiding
            lines.append(f"| {j.judge} | {j.family} | {a['clean']:.3f} | {a['cloaked']:.3f} | {a['noise']:.3f} | {a['zero']:.3f} "
                         f"| {j.uar['clean']:.3f} | {j.uar['cloaked']:.3f} | **{h['cloaked']:.2f}** [{j.hiding_ci[0]:.2f}, {j.hiding_ci[1]:.2f}] | {h['noise']:.2f} "
                         f"| {h['zero']:.2f} | {'yes' if j.beats_controls else 'no'} |")
        lines += ["", "Probability each judge gives the true emotion (mean over clips), and how far the cloak "
                  "lowers it beyond each control (paired 95 % CI):", "",
                  "| judge | clean | cloaked | noise | zero | noise - cloaked | zero - cloaked |", "|---|---|---|---|---|---|---|"]
        for j in c.judges:
            p, m = j.confidence, j.confidence_margin_ci
            lines.append(f"| {j.judge} | " + " | ".join(f"{p[k]:.3f}" for k in ("clean", "cloaked", "noise", "zero"))
                         + " | " + " | ".join(f"{p[k] - p['cloaked']:+.3f} [{m[k][0]:+.3f}, {m[k][1]:+.3f}]"
                                              for k in ("noise", "zero")) + " |")
        if c.quality:
            q = c.quality
            lines += ["", "| listener | clean | cloaked | noise | zero |", "|---|---|---|---|---|"]
            lines += [f"| DNSMOS {k.upper()} | " + " | ".join(f"{q[f'dnsmos_{k}_{c}']:.2f}" for c in ("clean", "cloaked", "noise", "zero")) + " |"
                      for k in ("ovrl", "sig", "bak")]
            lines.append(f"| speaker similarity to clean | 1 | {q['speaker_similarity_cloaked']:.3f} | | {q['speaker_similarity_zero']:.3f} |")
            for key, label in (("wer", "Whisper-base WER"), ("wer_sphinx", "Sphinx WER (crafts nothing)")):
                if f"{key}_clean" in q:
                    clean, cloaked, ci = q[f"{key}_clean"], q[f"{key}_cloaked"], q.get(f"{key}_increase_ci")
                    rise = f" ({cloaked - clean:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}])" if ci else ""
                    lines.append(f"| {label} | {clean:.3f} | {cloaked:.3f}{rise} | | |")
            if "pesq_wb_cloaked" in q:
                lines.append(f"| PESQ-WB | 4.64 | {q['pesq_wb_cloaked']:.2f} | | |")
        lines.append("")
    return "\n".join(lines)


def write_texts(out: Path, texts: dict[str, str]) -> None:
    """Each ``name: text`` as a file in ``out``, written atomically (temp file + rename)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        tmp = out / f".{name}.part"
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(out / name)


def write_result(result: BenchResult, out: Path) -> None:
    """``results.json`` and ``results.md`` in ``out`` (atomically)."""
    payload = {"config": asdict(result.config), "mode": result.mode, "seconds": round(result.seconds, 1),
               "realtime_factor": result.realtime_factor,
               "corpora": [asdict(c) for c in result.corpora]}
    write_texts(out, {"results.json": json.dumps(payload, indent=2, default=str), "results.md": format_result(result)})


def run_frontier(config: BenchConfig, strengths: Sequence[float], out: Path,
                 progress: Progress | None = None) -> list[BenchResult]:
    """The bench at each neutralizer strength; writes ``frontier.json`` and ``frontier.png``/``.svg``."""
    results = []
    for s in strengths:
        result = run_bench(replace(config, strength=s), progress)
        write_result(result, out / f"strength_{s:g}")
        results.append(result)
    points = [{"strength": r.config.strength, "corpus": c.corpus, "quality": c.quality,
               "hiding": {j.judge: j.hiding["cloaked"] for j in c.judges}} for r in results for c in r.corpora]
    (out / "frontier.json").write_text(json.dumps(points, indent=2) + "\n", encoding="utf-8")
    plot_frontier(points, out / "frontier")
    return results


def plot_frontier(points: list[dict], stem: Path) -> None:
    """Hiding ratio per judge against DNSMOS OVRL and WER increase, one point per strength."""
    from cloak.eval.plots import plt, save_figure  # plots sets the Agg backend before pyplot loads

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    judges = sorted({(p["corpus"], j) for p in points for j in p["hiding"]})
    for corpus, judge in judges:
        pts = [p for p in points if p["corpus"] == corpus and judge in p["hiding"]]
        y = [p["hiding"][judge] for p in pts]
        for ax, xkey in zip(axes, ("dnsmos", "wer")):
            if xkey == "dnsmos":
                x = [p["quality"].get("dnsmos_ovrl_cloaked", math.nan) for p in pts]
            else:
                x = [p["quality"].get("wer_cloaked", math.nan) - p["quality"].get("wer_clean", math.nan) for p in pts]
            ax.plot(x, y, marker="o", label=f"{judge} ({corpus})")
            for xi, yi, p in zip(x, y, pts):
                ax.annotate(f"{p['strength']:g}", (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    clean = [p["quality"]["dnsmos_ovrl_clean"] for p in points if "dnsmos_ovrl_clean" in p["quality"]]
    if clean:
        axes[0].axvline(np.mean(clean) - 0.3, color="grey", ls="--", lw=0.8, label="clean DNSMOS - 0.3 (target)")
    axes[1].axvline(0.03, color="grey", ls=":", lw=0.8, label="WER +0.03 (target)")
    for ax in axes:
        ax.axhline(0.5, color="grey", ls=":", lw=0.8)
        ax.grid(alpha=0.3)
    axes[0].set(xlabel="DNSMOS OVRL of cloaked audio (higher is better)", ylabel="hiding ratio (1 = chance)")
    axes[0].invert_xaxis()
    axes[1].set(xlabel="Whisper-base WER increase over clean")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle("cloak neutral mode: hiding from independent judges against listener cost (labels: strength)")
    fig.tight_layout()
    for ext in ("png", "svg"):
        save_figure(fig, stem.with_suffix(f".{ext}"), dpi=130)
    plt.close(fig)


def format_table(folders: Sequence[Path]) -> str:
    """One row per saved bench run (``results.json`` in each folder): hiding per judge and the costs."""
    runs = []
    for folder in folders:
        payload = json.loads((Path(folder) / "results.json").read_text(encoding="utf-8"))
        for c in payload["corpora"]:
            runs.append((Path(folder).name, c))
    judges = sorted({(c["corpus"], j["judge"]) for _, c in runs for j in c["judges"]})
    head = "| run | corpus | " + " | ".join(f"{j}" for _, j in judges) + " | DNSMOS OVRL | speaker sim | WER |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, c in runs:
        hid = {j["judge"]: j for j in c["judges"]}
        cells = []
        for corpus, j in judges:
            r = hid.get(j) if corpus == c["corpus"] else None
            if r is None:
                cells.append("")
                continue
            ci = r.get("hiding_ci")
            cells.append(f"{r['hiding']['cloaked']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
                         + ("" if all(lo > 0 for lo, _ in r["margin_ci"].values()) else " n.s.")
                         + (" (helped craft)" if r["family"].endswith(HELPED_CRAFT) else ""))
        q = c["quality"]
        dn = f"{q['dnsmos_ovrl_cloaked']:.2f} (clean {q['dnsmos_ovrl_clean']:.2f})" if q else ""
        sim = f"{q['speaker_similarity_cloaked']:.3f}" if q else ""
        wer_ = f"{q['wer_cloaked']:.3f} (clean {q['wer_clean']:.3f})" if "wer_clean" in q else ""
        lines.append(f"| {name} | {c['corpus']} | " + " | ".join(cells) + f" | {dn} | {sim} | {wer_} |")
    return "\n".join(lines)


def add_bench_parser(subparsers) -> None:
    """``cloak bench``: the transfer bench on held-out speakers."""
    p = subparsers.add_parser("bench", help="transfer bench: hiding ratio per independent judge, with controls and quality")
    p.add_argument("--mode", default=DEFAULT_MODE, choices=list(MODES))
    p.add_argument("--strength", type=float, help="neutralizer strength 0..1 (default: the mode's)")
    p.add_argument("--attack", choices=list(STRENGTHS), help="add (or set) the adversarial stage with this preset")
    p.add_argument("--band-gain", type=float, metavar="DB", help="add the band-gain stage (moving equalizer, up to DB dB per band)")
    p.add_argument("--band-control", action="store_true",
                   help="with --band-gain: random signs instead of crafted gains (the stage's own control)")
    p.add_argument("--no-words-guard", action="store_true",
                   help="with --band-gain or --attack (neutral mode): craft without the words guard (Whisper then judges too)")
    p.add_argument("--corpus", action="append", choices=list(LANGUAGES), help="corpus to use (repeatable; default both)")
    p.add_argument("--judge", action="append", help="judge name (repeatable; default every shipped judge)")
    p.add_argument("--no-asr", action="store_true", help="skip the Whisper WER")
    p.add_argument("--no-quality", action="store_true", help="skip DNSMOS, speaker similarity and WER")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N held-out clips per corpus")
    p.add_argument("--set", action="append", default=[], metavar="CUE=X",
                   help="change one neutralizer setting for an ablation, e.g. --set effort=0 (repeatable)")
    p.add_argument("--frontier", metavar="S,S,...", help="run at each neutralizer strength and plot hiding against quality")
    p.add_argument("--out", metavar="DIR", help="results folder (default: bench_MODE; --adaptive: adaptive_MODE)")
    p.add_argument("--table", nargs="+", metavar="DIR", help="instead: print one table row per saved run folder")
    p.add_argument("--adaptive", action="store_true",
                   help="instead: retrain each probe judge on cloaked training clips (an attacker who adapts) and read the cloaked held-out clips")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=main_bench)


def parse_overrides(items: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """``["effort=0", "rate=0.5"]`` -> ``(("effort", 0.0), ("rate", 0.5))``; ValueError names a bad item."""
    from cloak.neutralizer import NeutralizeConfig

    known = set(NeutralizeConfig.__dataclass_fields__) - {"strength"}
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in known:
            raise ValueError(f"--set {item!r}: expected CUE=X with CUE one of {', '.join(sorted(known))}")
        try:
            out.append((key, float(value)))
        except ValueError:
            raise ValueError(f"--set {item!r}: {value!r} is not a number") from None
    return tuple(out)


def main_bench(args) -> int:
    if args.table:
        print(format_table([Path(d) for d in args.table]))
        return 0
    config = BenchConfig(mode=args.mode, strength=args.strength, corpora=tuple(args.corpus or LANGUAGES),
                         judges=tuple(args.judge) if args.judge else None, asr=not (args.no_asr or args.no_quality),
                         quality=not args.no_quality, limit=args.limit, overrides=parse_overrides(args.set),
                         attack=args.attack, band_gain=args.band_gain, band_control=args.band_control,
                         words_guard=not args.no_words_guard)
    last = {"what": ""}

    def progress(what: str, done: int, total: int) -> None:
        if not args.quiet and (what != last["what"] or done == total):
            import sys

            print(f"\r{what}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
            last["what"] = what

    out = Path(args.out or f"{'adaptive' if args.adaptive else 'bench'}_{args.mode}")
    if args.adaptive:
        from cloak.eval.adaptive import format_adaptive, run_adaptive, write_adaptive

        payload = run_adaptive(config, progress=progress)
        write_adaptive(payload, out)
        print(format_adaptive(payload))
        return 0
    if args.frontier:
        try:
            strengths = [float(x) for x in args.frontier.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--frontier {args.frontier!r}: expected numbers such as 0,0.5,1") from None
        for r in run_frontier(config, strengths, out, progress):
            print(format_result(r))
        print(f"frontier: {out / 'frontier.png'}")
        return 0
    result = run_bench(config, progress)
    write_result(result, out)
    print(format_result(result))
    return 0
