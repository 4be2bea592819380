"""Does the cloak survive a recognizer that adapts to it?

Someone who knows the cloak can run it over labelled audio and train on the result. For every
probe judge of a corpus (fixed features -> linear probe: eGeMAPS functionals, Whisper encoder
states, a speaker embedding) this retrains the probe on the *cloaked* training-speaker clips,
choosing its own ``l2`` by speaker-grouped cross-validation as the shipped judge did on clean
clips, then reads the cloaked held-out clips. Beside it: the shipped judge on clean and on
cloaked clips, and the retrained probe on clean clips. The network judges (gru-mel,
ravdess-mfcc) are not retrained here. Held-out speakers never reach training.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cloak.chain import Chain
from cloak.metrics import accuracy, uar
from cloak.model import load_recognizer

from .bench import BenchConfig, Clips, Progress, hiding_interval, hiding_ratio, held_out, process, write_texts

CONDITIONS = ("shipped_clean", "shipped_cloaked", "adaptive_cloaked", "adaptive_clean")


def training_clips(corpus: str, limit: int | None = None) -> Clips:
    """The training-speaker clips of ``corpus``; ``limit`` keeps that many, evenly spaced (every speaker stays)."""
    from cloak.eval.judges.data import corpus_clips, read_wave

    clips, _ = corpus_clips(corpus)
    if limit:
        clips = [clips[i] for i in np.linspace(0, len(clips) - 1, min(limit, len(clips))).round().astype(int)]
    return Clips(corpus, [c.path.name for c in clips], [read_wave(c.path) for c in clips],
                 np.array([c.label for c in clips]), [""] * len(clips), [c.speaker for c in clips])


def adapt_judge(judge, train: Clips, train_cloaked: list[np.ndarray], held: Clips,
                held_cloaked: list[np.ndarray], seed: int) -> dict:
    """Retrain ``judge``'s probe on ``train_cloaked`` and score the four conditions on ``held``."""
    from cloak.eval.judges.probe import fit_probe, select_l2
    from cloak.eval.judges.store import cached_features

    fid, n_classes = judge.meta["feature_id"], len(judge.classes)
    x_train = cached_features(fid, train_cloaked, judge.extract)
    l2, cv = select_l2(x_train, train.labels, train.speakers, n_classes)
    adaptive = fit_probe(x_train, train.labels, n_classes, l2)
    x_clean = cached_features(fid, held.waves, judge.extract)
    x_cloaked = cached_features(fid, held_cloaked, judge.extract)
    probs = {"shipped_clean": judge.probe.predict_proba(x_clean),
             "shipped_cloaked": judge.probe.predict_proba(x_cloaked),
             "adaptive_cloaked": adaptive.predict_proba(x_cloaked),
             "adaptive_clean": adaptive.predict_proba(x_clean)}
    y, chance = held.labels, 1.0 / n_classes
    hits = {k: p.argmax(axis=1) == y for k, p in probs.items()}
    acc = {k: accuracy(y, p.argmax(axis=1)) for k, p in probs.items()}
    return {"judge": judge.name, "family": judge.family, "chance": chance, "l2": l2, "cv_uar_by_l2": cv,
            "accuracy": acc, "uar": {k: uar(y, p.argmax(axis=1), n_classes) for k, p in probs.items()},
            "hiding": {k: hiding_ratio(acc["shipped_clean"], acc[k], chance) for k in ("shipped_cloaked", "adaptive_cloaked")},
            "hiding_ci": {k: hiding_interval(hits["shipped_clean"], hits[k], chance, seed)
                          for k in ("shipped_cloaked", "adaptive_cloaked")}}


def run_adaptive(config: BenchConfig, train_limit: int | None = None, progress: Progress | None = None) -> dict:
    """Cloak both splits of each corpus with ``config``'s mode, then :func:`adapt_judge` every probe judge."""
    from cloak.eval.judges import available_judges, load_judge
    from cloak.eval.judges.probe import ProbeJudge

    t0 = time.perf_counter()
    mode = config.resolved_mode()
    chain = Chain(load_recognizer(), mode)
    corpora = []
    for corpus in config.corpora:
        shipped = available_judges(corpus)
        judges = [load_judge(n) for n in (config.judges or shipped) if n in shipped]
        judges = [j for j in judges if isinstance(j, ProbeJudge)]
        if not judges:
            continue
        train, held = training_clips(corpus, train_limit), held_out(corpus, config.limit)
        train_cloaked = process(chain, train, progress, f"{corpus}: cloak training clips")
        held_cloaked = process(chain, held, progress, f"{corpus}: cloak held-out clips")
        rows = []
        for j in judges:
            rows.append(adapt_judge(j, train, train_cloaked, held, held_cloaked, config.seed))
            if progress:
                progress(f"{corpus}: retrain {j.name}", 1, 1)
        corpora.append({"corpus": corpus, "n_train": len(train.names), "n_held_out": len(held.names), "judges": rows})
    return {"config": asdict(config), "mode": asdict(mode), "corpora": corpora, "seconds": round(time.perf_counter() - t0, 1)}


def format_adaptive(payload: dict) -> str:
    """A markdown table per corpus: accuracy and hiding ratio of the shipped and the retrained probe."""
    lines = []
    for c in payload["corpora"]:
        lines += [f"**{c['corpus']}**: probes retrained on {c['n_train']} cloaked training clips, "
                  f"read on {c['n_held_out']} held-out clips", "",
                  "| judge | acc clean | acc cloaked (shipped) | acc cloaked (retrained on cloaked) | retrained, on clean "
                  "| hiding, shipped [95 % CI] | hiding, retrained [95 % CI] |", "|---|---|---|---|---|---|---|"]
        for r in c["judges"]:
            a, h, ci = r["accuracy"], r["hiding"], r["hiding_ci"]
            cells = [f"**{h[k]:.2f}** [{ci[k][0]:.2f}, {ci[k][1]:.2f}]" if not math.isnan(h[k]) else "n/a"
                     for k in ("shipped_cloaked", "adaptive_cloaked")]
            lines.append(f"| {r['judge']} | {a['shipped_clean']:.3f} | {a['shipped_cloaked']:.3f} | {a['adaptive_cloaked']:.3f} "
                         f"| {a['adaptive_clean']:.3f} | {cells[0]} | {cells[1]} |")
        lines.append("")
    return "\n".join(lines)


def write_adaptive(payload: dict, out: Path) -> None:
    """``adaptive.json`` and ``adaptive.md`` in ``out`` (atomically)."""
    write_texts(out, {"adaptive.json": json.dumps(payload, indent=2, default=str), "adaptive.md": format_adaptive(payload)})
