"""Batch cloaking over files and folders: output naming, resume, a run report, failures listed."""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from cloak.audio import AudioError, atomic_path, probe
from cloak.cloaker import Cloaker, CloakReport
from cloak.emodb import EMOTIONS
from cloak.model import ModelError
from cloak.pipeline import cloak_file

AUDIO_SUFFIXES = frozenset("." + ext.lower() for ext in sf.available_formats()) | {".wave", ".aif", ".oga", ".opus"}
CLOAKED_TAG = ".cloaked"
REPORT_FIELDS = (
    "file", "output", "status", "error", "mode", "duration_s", "duration_out_s", "steps", "snr_db",
    "emotion_before", "emotion_after",
    *(f"p_before_{e}" for e in EMOTIONS), *(f"p_after_{e}" for e in EMOTIONS),
)


@dataclass(frozen=True)
class Job:
    """One input file and where its cloaked version goes."""

    src: Path
    dest: Path


@dataclass
class Outcome:
    """What happened to one job: ``status`` is ``done``, ``skipped`` or ``failed``."""

    job: Job
    status: str
    report: CloakReport | None = None
    error: str = ""
    extra: dict = field(default_factory=dict)  # columns added by the caller (e.g. an independent judge)


@dataclass
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def cloaked_name(path: Path) -> Path:
    """``talk.wav`` -> ``talk.cloaked.wav`` beside it."""
    return path.with_name(f"{path.stem}{CLOAKED_TAG}{path.suffix}")


def output_is_file(paths: Sequence[str | os.PathLike], output: str | os.PathLike | None) -> bool:
    """True where ``output`` names one output file: one input file, and an audio extension that is not a folder."""
    return (output is not None and len(paths) == 1 and Path(paths[0]).is_file()
            and Path(output).suffix.lower() in AUDIO_SUFFIXES and not Path(output).is_dir())


def plan(paths: Sequence[str | os.PathLike], outdir: str | os.PathLike | None = None) -> list[Job]:
    """Expand files and folders (recursively) into jobs.

    With ``outdir`` each folder's tree is mirrored under it and names are kept, except that one
    input file with an ``outdir`` like ``calm.wav`` (see :func:`output_is_file`) is written
    there; without it ``NAME.cloaked.EXT`` goes beside each input. Folders contribute the files
    with an audio suffix (earlier ``*.cloaked.*`` outputs excluded); files named explicitly are always tried.
    """
    if output_is_file(paths, outdir):
        return [Job(Path(paths[0]), Path(outdir))]
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
                           and not f.stem.endswith(CLOAKED_TAG) and not f.name.startswith("."))
            pairs = [(f, f.relative_to(p)) for f in files]
        else:
            pairs = [(p, Path(p.name))]
        for src, rel in pairs:
            dest = Path(outdir) / rel if outdir is not None else cloaked_name(src)
            key = dest.resolve()
            if key in seen and seen[key] != src.resolve():
                raise ValueError(f"{src} and {seen[key]} would both be written to {dest}")
            if key not in seen:
                seen[key] = src.resolve()
                jobs.append(Job(src, dest))
    return jobs


def total_seconds(jobs: Iterable[Job]) -> float:
    """Audio duration of all readable inputs (unreadable ones count 0 and fail later)."""
    total = 0.0
    for j in jobs:
        try:
            total += probe(j.src).duration
        except AudioError:
            pass
    return total


def run(jobs: list[Job], cloaker: Cloaker, *, overwrite: bool = False, resume: bool = False,
        on_progress: Callable[[Job, float], None] | None = None,
        on_done: Callable[[Outcome], None] | None = None) -> BatchResult:
    """Cloak every job, continuing past failures.

    ``on_progress(job, fraction)`` reports progress inside a file; ``on_done(outcome)`` after each.
    With ``resume``, jobs whose output already exists are skipped (outputs are written
    atomically, so an existing one is complete).
    """
    result = BatchResult()
    for job in jobs:
        if resume and job.dest.exists() and not overwrite:
            outcome = Outcome(job, "skipped")
        else:
            step = (lambda done, total, job=job: on_progress(job, done / max(total, 1))) if on_progress else None
            try:
                if job.dest.exists() and job.dest.resolve() == job.src.resolve():
                    raise AudioError(f"{job.src}: refusing to overwrite the input")
                outcome = Outcome(job, "done", cloak_file(cloaker, job.src, job.dest, overwrite=overwrite, progress=step))
            except (AudioError, ModelError, OSError, ValueError) as e:
                outcome = Outcome(job, "failed", error=str(e).splitlines()[0] if str(e) else type(e).__name__)
        result.outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return result


def report_row(o: Outcome) -> dict:
    row = {"file": str(o.job.src), "output": str(o.job.dest), "status": o.status, "error": o.error}
    r = o.report
    if r is not None:
        row.update(mode=r.mode, duration_s=f"{r.duration_s:.3f}", steps=r.steps,
                   snr_db="" if r.snr_db != r.snr_db else f"{r.snr_db:.2f}",
                   duration_out_s="" if r.duration_out_s is None else f"{r.duration_out_s:.3f}",
                   emotion_before=r.emotion_before, emotion_after=r.emotion_after)
        row.update({f"p_before_{e}": f"{p:.4f}" for e, p in r.probs_before.items()})
        row.update({f"p_after_{e}": f"{p:.4f}" for e, p in r.probs_after.items()})
    row.update({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in o.extra.items()})
    return row


def read_report(path: str | os.PathLike) -> dict[str, dict]:
    """Rows of an earlier report that hold figures (status ``done``), keyed by output path; ``{}`` if none."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    return {_key(r["output"]): r for r in rows
            if r.get("status") == "done" and r.get("output") and all(r.get(k) is not None for k in REPORT_FIELDS)}


def _key(output: str) -> str:
    return str(Path(output).resolve())


class RunReport:
    """The CSV run report (one row per input, ``extra_fields`` appended), rewritten atomically after every file.

    A killed batch therefore leaves a report of the files it finished. With ``resume``, a file
    skipped because its output exists keeps its row from the earlier report at ``path``, so a
    resumed report holds every file's figures once.
    """

    def __init__(self, path: str | os.PathLike, resume: bool = False, extra_fields: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.fields = REPORT_FIELDS + extra_fields
        self.earlier = read_report(self.path) if resume else {}
        self.rows: list[dict] = []

    def add(self, outcome: Outcome) -> None:
        row = report_row(outcome)
        if outcome.status == "skipped":
            row = self.earlier.get(_key(row["output"]), row)
        self.rows.append(row)
        self.write()

    def write(self) -> Path:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = atomic_path(self.path)
        try:
            tmp.write_text(buf.getvalue(), encoding="utf-8")
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.path
