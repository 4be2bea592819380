"""The paper seed's three figures from sweep results (``results.json`` written by :mod:`cloak.eval.sweep`).

1. ``spec_true``   -- accuracy and loss against steps, spectrogram domain, true labels;
2. ``spec_pseudo`` -- the same with pseudo labels;
3. ``wave``        -- accuracy and WER against steps on cloaked waveforms (every waveform run found);

and from a ``privacy.json`` (:mod:`cloak.eval.privacy`) ``privacy``: UAR overall and per sex of
the shipped surrogate, the adaptive attacker and the clean control on clean and cloaked audio.

Each figure is written as PNG and SVG. A figure whose data is missing is skipped with a note.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cloak.audio import atomic_path  # noqa: E402
from cloak.emodb import EMOTIONS  # noqa: E402

log = logging.getLogger(__name__)

FIGURES = ("spec_true", "spec_pseudo", "wave")
FORMATS = ("png", "svg")
CHANCE = 1 / len(EMOTIONS)  # UAR of guessing, and the accuracy of a uniform guess
ACC_COLOR, LOSS_COLOR, WER_COLOR = "tab:blue", "tab:red", "tab:green"
# one shade per run when several runs share a figure
ACC_SHADES, LOSS_SHADES, WER_SHADES = ("#1f77b4", "#17becf", "#9467bd", "#7f7f7f"), ("#d62728", "#ff7f0e", "#e377c2", "#8c564b"), \
    ("#2ca02c", "#bcbd22", "#98df8a", "#556b2f")


def find_results(paths: Iterable[str | Path]) -> list[Path]:
    """``results.json`` files: the given files, and every one found below the given folders."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.rglob("results.json")))
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return found


def load_results(paths: Sequence[Path]) -> list[dict]:
    runs = []
    for p in paths:
        try:
            run = json.loads(Path(p).read_text(encoding="utf-8"))
            run["config"]["domain"], run["rows"]  # noqa: B018 -- shape check
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}: not a sweep results.json ({e})") from e
        run["_source"] = str(p)
        runs.append(run)
    return runs


def _series(run: dict, key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in run["rows"]:
        v = r.get(key)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            xs.append(r["steps"])
            ys.append(v)
    return xs, ys


def _label(run: dict, many: bool) -> str:
    c = run["config"]
    text = f"{c['labels']} labels" + (f", {run.get('objective_name')}" if c["labels"] == "pseudo" else "")
    return f"{text} ({Path(run['_source']).parent.name})" if many else text


def _subtitle(run: dict) -> str:
    c = run["config"]
    rows = run["rows"]
    budget = f"ε = {c['spec_epsilon']:g} (normalized log-mel)" if c["domain"] == "spec" else f"'{c['strength']}' budget"
    speakers = "+".join(run.get("speakers", ["03", "08"]))
    return f"held-out speaker{'s' if '+' in speakers else ''} {speakers}, n = {rows[0]['n']}, {budget}, " \
           f"model {run['model']['sha256'][:8]}"


def _steps_axis(ax, runs: Sequence[dict]) -> None:
    steps = sorted({r["steps"] for run in runs for r in run["rows"]})
    ax.set_xticks(steps)
    ax.set_xlabel("attack steps")
    ax.grid(True, alpha=0.3)


def plot_accuracy_loss(runs: Sequence[dict], title: str):
    """Accuracy and UAR (left axis) and mean cross-entropy w.r.t. the attacked labels (right axis)."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    loss_ax = ax.twinx()
    many = len(runs) > 1
    styles = ("-", "--", ":", "-.")
    for i, run in enumerate(runs):
        ls, name, j = styles[i % len(styles)], _label(run, many), i % len(ACC_SHADES)
        suffix = f" – {name}" if many else ""
        ax.plot(*_series(run, "accuracy"), ls, marker="o", color=ACC_SHADES[j], label=f"accuracy{suffix}")
        ax.plot(*_series(run, "uar"), ls, marker="s", color=ACC_SHADES[j], alpha=0.5, label=f"UAR{suffix}")
        loss_ax.plot(*_series(run, "loss"), ls, marker="^", color=LOSS_SHADES[j], label=f"loss{suffix}")
    ax.axhline(CHANCE, color="grey", lw=1, ls=":", label="chance (1/7)")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy / UAR (true labels)", color=ACC_COLOR)
    loss_ax.set_ylabel("cross-entropy w.r.t. attacked labels", color=LOSS_COLOR)
    loss_ax.set_ylim(bottom=0)
    _steps_axis(ax, runs)
    _legend(ax, loss_ax)
    ax.set_title(f"{title}\n{_subtitle(runs[0])}", fontsize=10)
    return fig


def plot_wave(runs: Sequence[dict]):
    """Accuracy (left axis) and WER (right axis) for every waveform run; SNR noted in the legend."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    wer_ax = ax.twinx()
    styles = ("-", "--", ":", "-.")
    any_wer = False
    for i, run in enumerate(runs):
        ls, name, j = styles[i % len(styles)], _label(run, True), i % len(ACC_SHADES)
        _, snr = _series(run, "snr_db")
        snr_note = f", SNR ≈ {sum(snr) / len(snr):.0f} dB" if snr else ""
        ax.plot(*_series(run, "accuracy"), ls, marker="o", color=ACC_SHADES[j], label=f"accuracy – {name}{snr_note}")
        xs, ys = _series(run, "wer")
        if xs:
            any_wer = True
            asr = (run.get("asr") or "").split(":")[0]
            wer_ax.plot(xs, ys, ls, marker="D", color=WER_SHADES[j], label=f"WER – {name} ({asr})")
    ax.axhline(CHANCE, color="grey", lw=1, ls=":", label="chance (1/7)")
    ax.set_ylim(0, 1)
    ax.set_ylabel("emotion accuracy (true labels)", color=ACC_COLOR)
    wer_ax.set_ylabel("word error rate" if any_wer else "word error rate (no ASR run)", color=WER_COLOR)
    top = max([v for run in runs for v in _series(run, "wer")[1]], default=0.0)
    wer_ax.set_ylim(0, max(0.5, top * 1.15))
    _steps_axis(ax, runs)
    _legend(ax, wer_ax)
    ax.set_title(f"Cloaked waveforms: emotion accuracy and intelligibility\n{_subtitle(runs[0])}", fontsize=10)
    return fig


def _legend(ax, other) -> None:
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = other.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="center right", fontsize=8, framealpha=0.9)


def save_figure(fig, path: Path, dpi: int = 150) -> None:
    """Write ``fig`` to ``path`` (format from the suffix) atomically and byte-for-byte reproducibly:
    no date stamp, fixed SVG element ids, so an unchanged figure leaves an unchanged file."""
    fmt = path.suffix.lstrip(".")
    tmp = atomic_path(path)
    try:
        with plt.rc_context({"svg.hashsalt": "cloak"}):
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata={"Date": None} if fmt in ("svg", "pdf") else None)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def output_stem(fig_arg: str | Path, name: str) -> Path:
    """``FIG/name`` when FIG is a folder (or has no suffix), else ``FIG-stem_name`` beside it."""
    fig_arg = Path(fig_arg)
    if fig_arg.is_dir() or not fig_arg.suffix:
        return fig_arg / name
    return fig_arg.with_name(f"{fig_arg.stem}_{name}")


def make_figures(runs: Sequence[dict], fig_arg: str | Path) -> tuple[list[Path], list[str]]:
    """Write the figures the runs allow; returns (files written, notes on skipped figures)."""
    groups = {
        "spec_true": [r for r in runs if r["config"]["domain"] == "spec" and r["config"]["labels"] == "true"],
        "spec_pseudo": [r for r in runs if r["config"]["domain"] == "spec" and r["config"]["labels"] == "pseudo"],
        "wave": [r for r in runs if r["config"]["domain"] == "wave"],
    }
    titles = {"spec_true": "Spectrogram-domain attack, true labels",
              "spec_pseudo": "Spectrogram-domain attack, pseudo labels"}
    written, skipped = [], []
    for name in FIGURES:
        group = groups[name]
        if not group:
            skipped.append(f"{name}: no {'waveform' if name == 'wave' else name.replace('_', ' / ')} results in the inputs")
            continue
        fig = plot_wave(group) if name == "wave" else plot_accuracy_loss(group, titles[name])
        stem = output_stem(fig_arg, name)
        stem.parent.mkdir(parents=True, exist_ok=True)
        for fmt in FORMATS:
            path = stem.with_name(f"{stem.name}.{fmt}")
            save_figure(fig, path)
            written.append(path)
        plt.close(fig)
    return written, skipped


PRIVACY_BARS = (("surrogate_clean", "surrogate\nclean"), ("surrogate_cloaked", "surrogate\ncloaked"),
                ("control_clean", "control\nclean"), ("control_cloaked", "control\ncloaked"),
                ("adaptive_clean", "adaptive\nclean"), ("adaptive_cloaked", "adaptive\ncloaked"))


def plot_privacy(payload: dict):
    """UAR overall and per held-out speaker's sex for each (recognizer, audio) of a ``privacy.json``."""
    res = payload["results"]
    bars = [(key, title) for key, title in PRIVACY_BARS if key in res]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.27
    for i, (field, label, color) in enumerate((("uar", "all", ACC_COLOR), ("uar_f", "female (08)", "#e377c2"),
                                               ("uar_m", "male (03)", "#7f7f7f"))):
        ax.bar([j + (i - 1) * width for j in range(len(bars))], [res[k].get(field, math.nan) for k, _ in bars],
               width, label=label, color=color)
    ax.axhline(CHANCE, ls="--", lw=1, color="gray", label="chance")
    ax.set_xticks(range(len(bars)), [title for _, title in bars], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("UAR on held-out speakers (privacy = 1 - UAR)")
    ax.set_title(f"Adaptive attacker: a fresh CNN trained {payload['train_config']['epochs']} epochs on "
                 f"{payload['n_train']} cloaked clips (n={payload['n_held_out']} held out)", fontsize=10)
    ax.legend(fontsize=8, ncol=4, loc="upper right")
    fig.tight_layout()
    return fig


def privacy_figures(paths: Iterable[str | Path], fig_arg: str | Path) -> list[Path]:
    """``privacy`` figures for every ``privacy.json`` below the given folders."""
    found = [f for p in map(Path, paths) if p.is_dir() for f in sorted(p.rglob("privacy.json"))]
    written = []
    for f in found:
        fig = plot_privacy(json.loads(f.read_text(encoding="utf-8")))
        stem = output_stem(fig_arg, "privacy" if len(found) == 1 else f"privacy_{f.parent.name}")
        stem.parent.mkdir(parents=True, exist_ok=True)
        for fmt in FORMATS:
            written.append(stem.with_name(f"{stem.name}.{fmt}"))
            save_figure(fig, written[-1])
        plt.close(fig)
    return written


def main_plot(args) -> int:
    """``cloak plot RESULTS... -o FIG``."""
    paths = find_results(args.results)
    privacy = privacy_figures(args.results, args.output)
    if not paths and not privacy:
        raise ValueError(f"no results.json or privacy.json in {', '.join(args.results)}")
    written, skipped = make_figures(load_results(paths), args.output) if paths else ([], [])
    written += privacy
    for note in skipped:
        print(f"skipped {note}")
    for path in written:
        print(path)
    return 0 if written else 1
