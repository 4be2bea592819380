"""Attack-strength sweep on the held-out EmoDB speakers: accuracy, UAR, loss, WER and SNR per step count.

Two domains:

* ``wave`` -- the product. Pseudo labels run :class:`cloak.cloaker.Cloaker` itself with the
  strength preset's budget and ``steps=k``; true labels run :class:`IterativeFGSM` with
  :func:`true_label_objective` under the same per-sample budget. The recognizer is scored
  on the whole cloaked clip and the cloaked audio is transcribed for the word error rate.
* ``spec`` -- the research baseline of the paper seed: the attack moves the CNN's
  normalized log-mel input directly inside a scalar L-inf ball of ``spec_epsilon``. There
  is no audio, so WER and SNR are undefined (empty).

Every (clip, steps) outcome is appended to a JSON-lines cache under ``OUT/cache/`` keyed
by the model's SHA-256 and every setting that shapes it, and transcripts go to a
:class:`cloak.eval.asr.TranscriptCache` keyed by audio content, so an interrupted or
repeated sweep only computes what is missing.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from cloak.attacks import OBJECTIVES, IterativeFGSM, true_label_objective
from cloak.audio import load_audio, to_model_rate
from cloak.cloaker import DEFAULT_STRENGTH, STRENGTHS, Cloaker, CloakConfig
from cloak.emodb import EMOTIONS, DatasetError, Utterance, find_emodb, load_emodb, split
from cloak.features import SAMPLE_RATE
from cloak.metrics import accuracy, uar
from cloak.model import default_model_path, load_checkpoint, build_recognizer, sha256_file

log = logging.getLogger(__name__)

DEFAULT_STEPS = (0, 1, 2, 3, 5, 10, 20)
DOMAINS = ("wave", "spec")
LABELS = ("pseudo", "true")
ASR_BACKENDS = ("none", "whisper", "google", "sphinx")
# Spectrogram-domain budget in normalized log-mel units (the clip's log-mel standard deviation).
# The default waveform cloak ('medium', 35 dB SNR) moves the normalized log-mel of the held-out
# clips by 0.10 on average (median 0.05, 90th percentile 0.27, shipped model): an L-inf ball of
# 0.1 grants every time-frequency bin about what the product changes on average.
DEFAULT_SPEC_EPSILON = 0.1
CACHE_VERSION = 1
# Source files whose code shapes an outcome: a change to any of them (the front end's normalization,
# say) starts a fresh outcome cache instead of mixing old and new numbers.
FINGERPRINT_MODULES = ("features", "attacks", "cloaker", "model", "audio")
VERSION_PACKAGES = ("cloak", "torch", "numpy", "faster-whisper", "ctranslate2", "jiwer", "SpeechRecognition", "soxr")

Progress = Callable[[int, int], None]  # (units done, units total); a unit is one clip at one step count


@dataclass(frozen=True)
class SweepConfig:
    """What one sweep measures; validated here so the CLI and tests get the same errors."""

    steps: tuple[int, ...] = DEFAULT_STEPS
    domain: str = "wave"
    labels: str = "pseudo"
    asr: str = "none"
    objective: str | None = None  # None: the strength preset's (the Cloaker's default)
    strength: str = DEFAULT_STRENGTH
    spec_epsilon: float = DEFAULT_SPEC_EPSILON
    limit: int | None = None
    language: str = "de"

    def __post_init__(self) -> None:
        if not self.steps or any(k < 0 for k in self.steps):
            raise ValueError(f"steps must be a non-empty list of counts >= 0, got {list(self.steps)}")
        object.__setattr__(self, "steps", tuple(sorted(set(int(k) for k in self.steps))))
        for name, value, allowed in (("domain", self.domain, DOMAINS), ("labels", self.labels, LABELS),
                                     ("asr", self.asr, ASR_BACKENDS), ("strength", self.strength, tuple(STRENGTHS))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(sorted(OBJECTIVES))}, got {self.objective!r}")
        if not 0 < self.spec_epsilon < 100:
            raise ValueError(f"spec_epsilon must be in (0, 100) normalized log-mel units, got {self.spec_epsilon}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        if self.domain == "spec" and self.asr != "none":
            raise ValueError("the spectrogram domain has no audio to transcribe: use --asr none")

    @property
    def objective_name(self) -> str:
        """The objective the attack climbs: ``true-ce`` with true labels, else the pseudo-label objective."""
        if self.labels == "true":
            return "true-ce"
        return self.objective or STRENGTHS[self.strength].objective

    def cloak_config(self, steps: int) -> CloakConfig:
        """The strength preset with ``steps`` and the objective (the waveform budget and step size)."""
        base = STRENGTHS[self.strength]
        return replace(base, steps=steps, objective=self.objective or base.objective)


@dataclass
class ClipOutcome:
    """One clip attacked with one step count."""

    clip: str
    steps: int
    log_probs: list[float]
    snr_db: float | None = None  # None: no audio (spec) or no perturbation
    transcripts: dict[str, str] = field(default_factory=dict)  # ASR identity -> text


@dataclass
class SweepResult:
    config: SweepConfig
    rows: list[dict]
    summary: dict
    computed: int = 0  # (clip, steps) attacks run in this call
    transcribed: int = 0  # transcripts requested from the ASR backend in this call (cache hits included)


# --- data -------------------------------------------------------------------------------------

def held_out_clips(data: str | None = None, limit: int | None = None) -> list[Utterance]:
    """The held-out split (speakers 03 and 08) in sorted name order, optionally the first ``limit``."""
    root = find_emodb(data)
    if root is None:
        raise DatasetError(f"EmoDB not found{' in ' + data if data else ''}; run `cloak data emodb --dest DIR` "
                           "and pass --data DIR (or set $CLOAK_EMODB)")
    _, held = split(load_emodb(root))
    return held[:limit] if limit else held


def load_wave16(utt: Utterance) -> np.ndarray:
    """The clip as float32 mono at the model's rate."""
    data, info = load_audio(utt.path)
    return to_model_rate(data, info.samplerate, SAMPLE_RATE)


# --- attacks ----------------------------------------------------------------------------------

class ClipAttacker:
    """Runs one clip at one step count in the configured domain."""

    def __init__(self, cnn: torch.nn.Module, config: SweepConfig) -> None:
        self.cnn = cnn.eval()
        self.model = build_recognizer(cnn).eval()
        self.front = self.model[0]
        self.config = config

    @torch.no_grad()
    def clean_log_probs(self, wave: np.ndarray) -> np.ndarray:
        return torch.log_softmax(self.model(torch.from_numpy(wave)[None]), -1)[0].numpy()

    def attack(self, wave: np.ndarray, label: int, steps: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(log-probs after the attack, cloaked 16 kHz audio or None in the spectrogram domain)."""
        if self.config.domain == "spec":
            return self._attack_spec(wave, label, steps), None
        cfg = self.config.cloak_config(steps)
        cloaker = Cloaker(self.model, cfg)
        if self.config.labels == "pseudo":
            delta, _, _ = cloaker.perturbation(wave)
        else:
            x = torch.from_numpy(wave)[None]
            # The product's per-sample budget and SNR floor, over the
            # whole clip (EmoDB clips are short; the Cloaker would split clips over 8 s into windows).
            bound = torch.from_numpy(cloaker.budget(wave))[None]
            attack = IterativeFGSM(self.model, steps=steps, alpha=cfg.step_size,
                                   objective=true_label_objective(torch.tensor([label])))
            delta = cloaker.apply_floor(wave, (attack(x, bound) - x)[0].numpy())
        cloaked = np.clip(wave + delta, -1.0, 1.0).astype(np.float32)
        with torch.no_grad():
            log_probs = torch.log_softmax(self.model(torch.from_numpy(cloaked)[None]), -1)[0].numpy()
        return log_probs, cloaked

    def _attack_spec(self, wave: np.ndarray, label: int, steps: int) -> np.ndarray:
        with torch.no_grad():
            x = self.front(torch.from_numpy(wave)[None])  # (1, n_mels, frames), normalized
        if self.config.labels == "true":
            objective = true_label_objective(torch.tensor([label]))
        else:
            objective = OBJECTIVES[self.config.objective_name]
        alpha = self.config.cloak_config(steps).step_size  # the Cloaker's rule: 2.5 / steps of the budget
        adv = IterativeFGSM(self.cnn, steps=steps, alpha=alpha, objective=objective, clip=None)(
            x, self.config.spec_epsilon)
        with torch.no_grad():
            return torch.log_softmax(self.cnn(adv), -1)[0].numpy()


# --- caches -----------------------------------------------------------------------------------

class OutcomeCache:
    """Append-only JSON lines of :class:`ClipOutcome`; later lines for the same (clip, steps) win."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[tuple[str, int], ClipOutcome] = {}
        if path.is_file():
            for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                try:
                    o = ClipOutcome(**json.loads(line))
                    self.entries[(o.clip, o.steps)] = o
                except (ValueError, TypeError):
                    log.warning("%s:%d: skipping a damaged cache line", path, n)

    def get(self, clip: str, steps: int) -> ClipOutcome | None:
        return self.entries.get((clip, steps))

    def put(self, outcome: ClipOutcome) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(outcome), ensure_ascii=False) + "\n")
        self.entries[(outcome.clip, outcome.steps)] = outcome


def code_fingerprint() -> str:
    """SHA-256 (12 hex digits) over the source of :data:`FINGERPRINT_MODULES` of the ``cloak`` package."""
    import cloak

    h = hashlib.sha256()
    for name in FINGERPRINT_MODULES:
        h.update((Path(cloak.__file__).parent / f"{name}.py").read_bytes())
    return h.hexdigest()[:12]


def cache_name(config: SweepConfig, model_sha256: str) -> str:
    """File name of the outcome cache: readable prefix + hash of everything that shapes an outcome."""
    shaping = {"v": CACHE_VERSION, "model": model_sha256, "code": code_fingerprint(), "domain": config.domain,
               "labels": config.labels, "objective": config.objective_name}
    if config.domain == "wave":
        base = asdict(config.cloak_config(1))
        shaping["budget"] = {k: base[k] for k in ("snr_db", "epsilon", "min_snr_db", "alpha", "window_s", "overlap_s")}
    else:
        shaping["spec_epsilon"] = config.spec_epsilon
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:12]
    return f"{config.domain}-{config.labels}-{config.objective_name}-{digest}.jsonl"


def make_asr(config: SweepConfig, transcript_cache: str | Path | None):
    """The configured transcriber behind a transcript cache (``None`` for ``asr == 'none'``)."""
    if config.asr == "none":
        return None
    from cloak.eval.asr import CachedTranscriber, TranscriptCache, make_transcriber
    from cloak.whisper_bundle import cache_root

    language = config.language
    if config.asr == "sphinx" and language not in ("en", "en-US"):
        log.warning("sphinx knows only English: transcribing German EmoDB with the English model (WER is not meaningful)")
        language = "en"
    path = Path(transcript_cache) if transcript_cache else cache_root() / "transcripts.jsonl"
    return CachedTranscriber(make_transcriber(config.asr, language), TranscriptCache(path))


# --- the sweep --------------------------------------------------------------------------------

def run_sweep(config: SweepConfig, out: str | Path, *, model: str | Path | None = None, data: str | None = None,
              transcriber=None, transcript_cache: str | Path | None = None,
              progress: Progress | None = None) -> SweepResult:
    """Run (or resume) a sweep, write ``OUT/results.csv`` and ``OUT/results.json``, return the result.

    ``transcriber`` replaces the one ``config.asr`` names (anything with ``name``, ``identity``
    and ``transcribe(wave, rate)``); tests pass a fake.
    """
    out = Path(out)
    t0 = time.perf_counter()
    model_path = Path(model) if model else default_model_path()
    cnn, _ = load_checkpoint(model_path)
    model_sha = sha256_file(model_path)
    clips = held_out_clips(data, config.limit)
    if config.domain == "spec":
        transcriber = None  # no audio to transcribe
    elif transcriber is None:
        transcriber = make_asr(config, transcript_cache)
    asr_id = None if transcriber is None else f"{transcriber.name}:{transcriber.identity}:{transcriber.language}"
    cache = OutcomeCache(out / "cache" / cache_name(config, model_sha))
    attacker = ClipAttacker(cnn, config)
    steps_needed = sorted(set(config.steps) | {0})  # clean predictions give the pseudo labels and "before"
    total, done = len(clips) * len(steps_needed), 0
    computed = transcribed = 0
    for utt in clips:
        wave = None
        for k in steps_needed:
            outcome = cache.get(utt.path.name, k)
            need_text = asr_id is not None and k in config.steps and (outcome is None or asr_id not in outcome.transcripts)
            if outcome is None or need_text:
                wave = load_wave16(utt) if wave is None else wave
                if k == 0:
                    log_probs, audio = attacker.clean_log_probs(wave), (None if config.domain == "spec" else wave)
                else:
                    log_probs, audio = attacker.attack(wave, utt.label, k)
                    computed += 1
                new = ClipOutcome(utt.path.name, k, [round(float(v), 6) for v in log_probs],
                                  _snr(wave, audio) if k > 0 else None,
                                  dict(outcome.transcripts) if outcome else {})
                if need_text:
                    new.transcripts[asr_id] = transcriber.transcribe(audio, SAMPLE_RATE)
                    transcribed += 1
                cache.put(new)
            done += 1
            if progress:
                progress(done, total)
    rows = [_row(config, clips, cache, k, asr_id) for k in config.steps]
    summary = _summary(config, clips, cache, asr_id, model_path, model_sha, time.perf_counter() - t0)
    result = SweepResult(config, rows, summary, computed, transcribed)
    write_results(result, out)
    return result


def _snr(clean: np.ndarray, cloaked: np.ndarray | None) -> float | None:
    if cloaked is None:
        return None
    from cloak.eval.text import snr_db

    value = snr_db(clean, cloaked)
    return value if math.isfinite(value) else None


def _predictions(clips: Sequence[Utterance], cache: OutcomeCache, k: int) -> np.ndarray:
    return np.stack([np.asarray(cache.get(u.path.name, k).log_probs) for u in clips])


def _row(config: SweepConfig, clips: Sequence[Utterance], cache: OutcomeCache, k: int, asr_id: str | None) -> dict:
    y_true = np.array([u.label for u in clips])
    clean = _predictions(clips, cache, 0).argmax(1)
    log_probs = _predictions(clips, cache, k)
    y_pred = log_probs.argmax(1)
    attacked = y_true if config.labels == "true" else clean
    n = len(EMOTIONS)
    row = {
        "steps": k, "n": len(clips),
        "accuracy": accuracy(y_true, y_pred), "uar": uar(y_true, y_pred, n),
        "loss": float(-log_probs[np.arange(len(clips)), attacked].mean()),  # CE w.r.t. the labels attacked
        "loss_true": float(-log_probs[np.arange(len(clips)), y_true].mean()),
        "changed": float((y_pred != clean).mean()),  # predictions that differ from the clean ones
    }
    for sex in ("f", "m"):
        idx = [i for i, u in enumerate(clips) if u.sex == sex]
        row[f"accuracy_{sex}"] = accuracy(y_true[idx], y_pred[idx]) if idx else float("nan")
    snrs = [o.snr_db for o in (cache.get(u.path.name, k) for u in clips) if o.snr_db is not None]
    row["snr_db"] = float(np.mean(snrs)) if snrs else float("nan")
    row["wer"] = float("nan")
    if asr_id is not None:
        from cloak.eval.text import wer

        hyps = [cache.get(u.path.name, k).transcripts[asr_id] for u in clips]
        row["wer"] = wer([u.text for u in clips], hyps)
    return row


def _summary(config: SweepConfig, clips, cache: OutcomeCache, asr_id, model_path: Path, model_sha: str,
             seconds: float) -> dict:
    y_true = np.array([u.label for u in clips])
    last = max(config.steps)
    before, after = _predictions(clips, cache, 0).argmax(1), _predictions(clips, cache, last).argmax(1)
    per_sex = {}
    for sex in ("f", "m"):
        idx = [i for i, u in enumerate(clips) if u.sex == sex]
        if idx:
            per_sex[sex] = {"n": len(idx), "steps_after": last, "accuracy_before": accuracy(y_true[idx], before[idx]),
                            "accuracy_after": accuracy(y_true[idx], after[idx]),
                            "uar_before": uar(y_true[idx], before[idx], len(EMOTIONS)),
                            "uar_after": uar(y_true[idx], after[idx], len(EMOTIONS))}
    settings = {"objective_name": config.objective_name}
    if config.domain == "wave":
        settings["cloak_config"] = asdict(config.cloak_config(last))
        settings["budget"] = (f"|delta| <= 10**(-{STRENGTHS[config.strength].snr_db:g}/20) * envelope, "
                              "step size 2.5/steps of it")
    else:
        settings["budget"] = f"|delta| <= {config.spec_epsilon:g} (normalized log-mel), step size 2.5/steps of it"
    return {
        "config": asdict(config), **settings, "asr": asr_id,
        "model": {"path": str(model_path), "sha256": model_sha}, "code_fingerprint": code_fingerprint(),
        "clips": [u.path.name for u in clips], "speakers": sorted({u.speaker for u in clips}),
        "per_sex": per_sex, "versions": package_versions(),
        "seconds_this_run": round(seconds, 1),
    }


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# --- writers ----------------------------------------------------------------------------------

CSV_COLUMNS = ("steps", "n", "accuracy", "uar", "loss", "loss_true", "changed", "accuracy_f", "accuracy_m",
               "wer", "snr_db")


def write_results(result: SweepResult, out: Path) -> None:
    """``OUT/results.csv`` (one row per step count; NaN as empty) and ``OUT/results.json``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({c: _csv_value(row[c]) for c in CSV_COLUMNS})
    payload = {**result.summary, "rows": [{k: _json_value(v) for k, v in r.items()} for r in result.rows]}
    (out / "results.json").write_text(json.dumps(_json_value(payload), indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")


def _csv_value(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def _json_value(v):
    """NaN and infinities become null (strict JSON)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


def format_rows(rows: Sequence[dict]) -> str:
    """A plain-text table of the rows for the terminal."""
    head = f"{'steps':>5} {'acc':>6} {'UAR':>6} {'loss':>7} {'changed':>7} {'acc f':>6} {'acc m':>6} {'WER':>6} {'SNR dB':>7}"
    lines = [head]
    for r in rows:
        fmt = lambda v, w, p: f"{'-':>{w}}" if isinstance(v, float) and math.isnan(v) else f"{v:{w}.{p}f}"  # noqa: E731
        lines.append(f"{r['steps']:>5} {fmt(r['accuracy'], 6, 3)} {fmt(r['uar'], 6, 3)} {fmt(r['loss'], 7, 3)} "
                     f"{fmt(r['changed'], 7, 3)} {fmt(r['accuracy_f'], 6, 3)} {fmt(r['accuracy_m'], 6, 3)} "
                     f"{fmt(r['wer'], 6, 3)} {fmt(r['snr_db'], 7, 1)}")
    return "\n".join(lines)


# --- command line -----------------------------------------------------------------------------

def parse_steps(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.replace(" ", "").split(",") if s)
    except ValueError:
        raise ValueError(f"--steps wants comma-separated integers such as 0,1,2,5, got {text!r}") from None


def main_sweep(args) -> int:
    """``cloak sweep``: the step sweep, or with ``--privacy`` the adaptive-attacker evaluation."""
    from tqdm import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.privacy:
        from cloak.eval.privacy import format_privacy, run_privacy

        report = run_privacy(Path(args.out or "privacy"), model=args.model, data=args.data, strength=args.strength,
                             objective=args.objective, epochs=args.privacy_epochs, limit=args.limit,
                             quiet=args.quiet)
        print(format_privacy(report))
        return 0
    config = SweepConfig(steps=parse_steps(args.steps), domain=args.domain, labels=args.labels, asr=args.asr,
                         objective=args.objective, strength=args.strength, limit=args.limit, language=args.language,
                         **({} if args.spec_epsilon is None else {"spec_epsilon": args.spec_epsilon}))
    out = Path(args.out or f"sweep_{config.domain}_{config.labels}")
    bar = tqdm(total=0, desc=f"sweep {config.domain}/{config.labels}", unit="clip-step", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = run_sweep(config, out, model=args.model, data=args.data, transcript_cache=args.transcripts,
                           progress=progress)
    except RuntimeError as e:  # ASRError: a backend that cannot load or answer
        if type(e).__name__ != "ASRError":
            raise
        raise ValueError(str(e)) from e
    finally:
        bar.close()
    print(format_rows(result.rows))
    print(f"{result.computed} attacks run, {result.transcribed} transcripts; results in {out}/results.csv and .json")
    return 0
