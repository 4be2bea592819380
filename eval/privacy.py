"""Does the cloak survive an attacker who adapts? Privacy = 1 - UAR on the held-out speakers.

The adaptive attacker knows the cloak: it cloaks every training-speaker clip with the
default :class:`cloak.cloaker.Cloaker` (against the shipped surrogate) and trains a fresh
recognizer on the log-mels of that cloaked audio, then reads the cloaked held-out clips.
For comparison the same report holds the surrogate itself on clean and on cloaked audio,
and a control recognizer trained the same way on clean audio (same epochs, same seed): it
separates the effect of cloaked training data from that of the shorter training, and its
score on cloaked audio measures how well the cloak transfers to a model it never saw.
Each held-out speaker has one sex (03 m, 08 f), so the per-sex figures are per speaker.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from cloak.cloaker import DEFAULT_STRENGTH, STRENGTHS, Cloaker
from cloak.emodb import DatasetError, Utterance, find_emodb, load_emodb, split
from cloak.features import LogMel
from cloak.metrics import accuracy
from cloak.model import build_recognizer, default_model_path, load_checkpoint, sha256_file
from cloak.train import TrainConfig, predict_proba, report, train_cnn

log = logging.getLogger(__name__)
SAVE_EVERY = 50  # clips cloaked between saves of the feature cache (resume after an interruption)


def _cache_dir() -> Path:
    from cloak.whisper_bundle import cache_root  # $CLOAK_CACHE or ~/.cache/cloak

    return cache_root() / "privacy"


def cloaked_features(utterances: Sequence[Utterance], cloaker: Cloaker, cache: Path | None,
                     progress=None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(clean, cloaked) unnormalized log-mels ``(n_mels, frames)`` per utterance, cached in ``cache`` (a .pt)."""
    from cloak.eval.sweep import load_wave16

    front = LogMel(cloaker.model[0].n_mels)
    store: dict[str, dict[str, torch.Tensor]] = {}
    if cache is not None and cache.is_file():
        store = torch.load(cache, weights_only=True)
    dirty = 0
    for i, u in enumerate(utterances):
        if u.path.name not in store:
            wave = load_wave16(u)
            delta, _, _ = cloaker.perturbation(wave)
            cloaked = np.clip(wave + delta, -1.0, 1.0).astype(np.float32)
            with torch.no_grad():
                pair = front.log_mel(torch.from_numpy(np.stack([wave, cloaked])))
            store[u.path.name] = {"clean": pair[0].half(), "cloaked": pair[1].half()}
            dirty += 1
            if cache is not None and dirty % SAVE_EVERY == 0:
                _save(store, cache)
        if progress:
            progress(i + 1, len(utterances))
    if cache is not None and dirty:
        _save(store, cache)
    return ([store[u.path.name]["clean"].float() for u in utterances],
            [store[u.path.name]["cloaked"].float() for u in utterances])


def _save(store: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    torch.save(store, tmp)
    tmp.replace(path)


def score(utterances: Sequence[Utterance], probs: np.ndarray) -> dict:
    """:func:`cloak.train.report` plus per-sex accuracy and privacy = 1 - UAR."""
    y_pred = probs.argmax(1).tolist()
    out = report(utterances, y_pred)
    out["privacy"] = 1.0 - out["uar"]
    for sex in ("f", "m"):
        idx = [i for i, u in enumerate(utterances) if u.sex == sex]
        if idx:
            out[f"accuracy_{sex}"] = accuracy([utterances[i].label for i in idx], [y_pred[i] for i in idx])
    return out


def run_privacy(out: str | Path, *, model: str | Path | None = None, data: str | None = None,
                strength: str = DEFAULT_STRENGTH, objective: str | None = None, epochs: int = 30,
                seed: int = 0, limit: int | None = None, control: bool = True, quiet: bool = False) -> dict:
    """Cloak all clips, train the adaptive attacker (and the clean control), write ``OUT/privacy.json``.

    ``limit`` keeps the first ``limit`` clips of each split (for tests).
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    model_path = Path(model) if model else default_model_path()
    cnn, _ = load_checkpoint(model_path)
    model_sha = sha256_file(model_path)
    root = find_emodb(data)
    if root is None:
        raise DatasetError("EmoDB not found; pass --data DIR (or set $CLOAK_EMODB)")
    train_utts, held_utts = split(load_emodb(root))
    if limit:
        train_utts, held_utts = train_utts[:limit], held_utts[:limit]
    config = STRENGTHS[strength] if objective is None else replace(STRENGTHS[strength], objective=objective)
    cloaker = Cloaker(build_recognizer(cnn), config)
    from cloak.eval.sweep import code_fingerprint

    key = hashlib.sha256(json.dumps({"model": model_sha, "cloak": asdict(config), "code": code_fingerprint()},
                                    sort_keys=True).encode())
    cache = _cache_dir() / f"features-{key.hexdigest()[:12]}.pt"
    utts = list(train_utts) + list(held_utts)
    bar = tqdm(total=len(utts), desc="cloaking train + held-out", unit="clip", disable=quiet)
    clean, cloaked = cloaked_features(utts, cloaker, cache, progress=lambda d, t: bar.update(d - bar.n))
    bar.close()
    n_tr = len(train_utts)
    labels = [u.label for u in train_utts]
    held_clean, held_cloaked = clean[n_tr:], cloaked[n_tr:]
    results: dict[str, dict] = {
        "surrogate_clean": score(held_utts, predict_proba(cnn, held_clean)),
        "surrogate_cloaked": score(held_utts, predict_proba(cnn, held_cloaked)),
    }
    cfg = TrainConfig(epochs=epochs, seed=seed)
    trained = {"adaptive": cloaked[:n_tr]} | ({"control": clean[:n_tr]} if control else {})
    for name, feats in trained.items():
        bar = tqdm(total=epochs, desc=f"training {name}", unit="epoch", disable=quiet)
        fresh = train_cnn(feats, labels, cfg, progress=lambda e, n, loss: bar.update(1))
        bar.close()
        results[f"{name}_clean"] = score(held_utts, predict_proba(fresh, held_clean))
        results[f"{name}_cloaked"] = score(held_utts, predict_proba(fresh, held_cloaked))
    per_sex = {sex: {"accuracy_before": results["surrogate_clean"].get(f"accuracy_{sex}"),
                     "accuracy_after": results["surrogate_cloaked"].get(f"accuracy_{sex}"),
                     "uar_before": results["surrogate_clean"].get(f"uar_{sex}"),
                     "uar_after": results["surrogate_cloaked"].get(f"uar_{sex}")}
               for sex in ("f", "m") if f"accuracy_{sex}" in results["surrogate_clean"]}
    from cloak.eval.sweep import package_versions

    payload = {
        "model": {"path": str(model_path), "sha256": model_sha}, "cloak_config": asdict(config),
        "train_config": asdict(cfg), "n_train": n_tr, "n_held_out": len(held_utts),
        "per_sex": per_sex, "results": results, "versions": package_versions(),
        "seconds_this_run": round(time.perf_counter() - t0, 1),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "privacy.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return payload


ROWS = (
    ("surrogate_clean", "surrogate (shipped), clean audio"),
    ("surrogate_cloaked", "surrogate (shipped), cloaked audio"),
    ("adaptive_cloaked", "adaptive (trained on cloaked), cloaked audio"),
    ("adaptive_clean", "adaptive (trained on cloaked), clean audio"),
    ("control_clean", "control (trained on clean), clean audio"),
    ("control_cloaked", "control (trained on clean), cloaked audio"),
)


def format_privacy(payload: dict) -> str:
    """A terminal table: accuracy, UAR and privacy per recognizer and audio."""
    res = payload["results"]
    lines = [f"held-out n={payload['n_held_out']}, adaptive training on {payload['n_train']} cloaked clips, "
             f"{payload['train_config']['epochs']} epochs",
             f"{'recognizer, audio':<46} {'acc':>6} {'UAR':>6} {'privacy':>7} {'acc f':>6} {'acc m':>6}"]
    for key, title in ROWS:
        if key in res:
            r = res[key]
            lines.append(f"{title:<46} {r['accuracy']:6.3f} {r['uar']:6.3f} {r['privacy']:7.3f} "
                         f"{r.get('accuracy_f', float('nan')):6.3f} {r.get('accuracy_m', float('nan')):6.3f}")
    return "\n".join(lines)
