"""Training and speaker-independent cross-validation of the surrogate :class:`EmotionCNN`.

Log-mels are computed once per clip (the front end has no trainable parameters); training
then draws random crops with SpecAugment-style masks, normalizing each crop as the
front end does at inference.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
from torch import nn

from cloak.audio import to_model_rate
from pathlib import Path

from cloak.emodb import EMOTIONS, SPEAKERS, DatasetError, Utterance
from cloak.features import SAMPLE_RATE, LogMel, normalize
from cloak.metrics import accuracy, recalls, uar
from cloak.model import CNNConfig, EmotionCNN

log = logging.getLogger(__name__)
Progress = Callable[[int, int, float], None]  # (epoch, epochs, mean loss)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (recorded in the checkpoint's metadata)."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-2
    crop_frames: int = 250  # 2.5 s random crops
    freq_mask: int = 8  # SpecAugment: up to this many mel bands masked
    time_mask: int = 30  # ... and up to this many frames
    label_smoothing: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.crop_frames < 32:
            raise ValueError(f"invalid training config: {self}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def extract_features(utterances: Sequence[Utterance], n_mels: int | None = None) -> list[torch.Tensor]:
    """Unnormalized log-mel ``(n_mels, frames)`` of each utterance, at the model's sample rate."""
    front = LogMel() if n_mels is None else LogMel(n_mels)
    feats = []
    for u in utterances:
        data, sr = sf.read(str(u.path), dtype="float32", always_2d=True)
        wave = torch.from_numpy(to_model_rate(data, sr, SAMPLE_RATE))
        feats.append(front.log_mel(wave[None])[0])
    return feats


def _batch(feats: list[torch.Tensor], crop: int, cfg: TrainConfig, rng: np.random.Generator):
    """Random crops, normalized, padded to ``crop`` frames, SpecAugment masks; returns (x, mask)."""
    n_mels = feats[0].shape[0]
    x = torch.zeros(len(feats), n_mels, crop)
    mask = torch.zeros(len(feats), crop, dtype=torch.bool)
    for i, f in enumerate(feats):
        t = f.shape[1]
        start = int(rng.integers(0, t - crop + 1)) if t > crop else 0
        seg = normalize(f[:, start:start + crop])
        x[i, :, : seg.shape[1]] = seg
        mask[i, : seg.shape[1]] = True
        fw = int(rng.integers(0, cfg.freq_mask + 1))
        f0 = int(rng.integers(0, n_mels - fw + 1))
        x[i, f0:f0 + fw] = 0.0
        tw = int(rng.integers(0, cfg.time_mask + 1))
        t0 = int(rng.integers(0, max(1, seg.shape[1] - tw)))
        x[i, :, t0:t0 + tw] = 0.0
    return x, mask


def train_cnn(
    feats: Sequence[torch.Tensor], labels: Sequence[int], cfg: TrainConfig = TrainConfig(),
    model_cfg: CNNConfig = CNNConfig(), progress: Progress | None = None,
) -> EmotionCNN:
    """Train from scratch on precomputed log-mels; deterministic for a given ``cfg.seed``."""
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    cnn = EmotionCNN(model_cfg)
    labels_t = torch.as_tensor(labels)
    counts = torch.bincount(labels_t, minlength=model_cfg.n_classes).float()
    weight = counts.sum() / (len(counts) * counts.clamp(min=1))  # inverse frequency: optimise UAR, not accuracy
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    opt = torch.optim.AdamW(cnn.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(feats) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    for epoch in range(cfg.epochs):
        cnn.train()
        order = rng.permutation(len(feats))
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x, mask = _batch([feats[i] for i in idx], cfg.crop_frames, cfg, rng)
            loss = loss_fn(cnn(x, mask), labels_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if progress:
            progress(epoch + 1, cfg.epochs, total / len(feats))
    return cnn.eval()


@torch.no_grad()
def predict_proba(cnn: EmotionCNN, feats: Sequence[torch.Tensor]) -> np.ndarray:
    """Class probabilities ``(n, 7)`` for whole clips (each normalized as the front end does)."""
    cnn.eval()
    return np.stack([torch.softmax(cnn(normalize(f)[None]), -1)[0].numpy() for f in feats])


def report(utterances: Sequence[Utterance], y_pred: Sequence[int]) -> dict:
    """Accuracy, UAR, per-emotion recall and per-sex UAR of predictions on ``utterances``."""
    y_true = [u.label for u in utterances]
    n = len(EMOTIONS)
    out = {
        "n": len(y_true),
        "accuracy": accuracy(y_true, y_pred),
        "uar": uar(y_true, y_pred, n),
        "recall": dict(zip(EMOTIONS, (float(r) for r in recalls(y_true, y_pred, n)))),
    }
    for sex in ("f", "m"):
        idx = [i for i, u in enumerate(utterances) if u.sex == sex]
        if idx:
            out[f"uar_{sex}"] = uar([y_true[i] for i in idx], [y_pred[i] for i in idx], n)
    return out


def speaker_folds(speakers: Sequence[str], n_folds: int) -> list[list[str]]:
    """Group speakers into folds, alternating sexes so each fold mixes them when it can."""
    ordered = sorted(speakers, key=lambda s: (SPEAKERS[s][0], s))
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    for i, s in enumerate(ordered):
        folds[i % n_folds].append(s)
    return [sorted(f) for f in folds if f]


def cross_validate(
    utterances: Sequence[Utterance], feats: Sequence[torch.Tensor], n_folds: int,
    cfg: TrainConfig = TrainConfig(), progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Speaker-grouped CV (``n_folds`` = number of speakers gives leave-one-speaker-out).

    Predictions of every fold are pooled before scoring, so every utterance is scored once
    by a model that never heard its speaker.
    """
    speakers = sorted({u.speaker for u in utterances})
    folds = speaker_folds(speakers, n_folds)
    y_pred = np.zeros(len(utterances), dtype=int)
    for k, test_speakers in enumerate(folds):
        tr = [i for i, u in enumerate(utterances) if u.speaker not in test_speakers]
        te = [i for i, u in enumerate(utterances) if u.speaker in test_speakers]
        cnn = train_cnn([feats[i] for i in tr], [utterances[i].label for i in tr], cfg)
        y_pred[te] = predict_proba(cnn, [feats[i] for i in te]).argmax(1)
        log.info("fold %d/%d speakers %s: accuracy %.3f", k + 1, len(folds), test_speakers,
                 accuracy([utterances[i].label for i in te], y_pred[te]))
        if progress:
            progress(k + 1, len(folds))
    out = report(utterances, y_pred.tolist())
    out["folds"] = folds
    return out


def run_training(data: str | None, out: str | None, epochs: int | None = None, seed: int = 0,
                 cv_folds: int = 0, metrics_path: str | None = None) -> int:
    """``cloak train``: optional speaker-grouped CV on the training speakers, then the final model.

    Speakers 03 and 08 are never seen in training or model selection; the final model is
    scored on them once, and the figures go into the checkpoint's metadata.
    """
    import json
    from dataclasses import asdict

    from tqdm import tqdm

    from cloak.emodb import checksum, find_emodb, load_emodb, split
    from cloak.model import save_checkpoint

    if not out and not cv_folds:
        raise ValueError("nothing to do: give --out PATH and/or --cv")
    root = find_emodb(data)
    if root is None:
        raise DatasetError(f"EmoDB not found{' in ' + data if data else ''}; run `cloak data emodb --dest DIR` "
                           f"and pass --data DIR (or set $CLOAK_EMODB)")
    utts = load_emodb(root)
    train_utts, held_utts = split(utts)
    cfg = TrainConfig(seed=seed) if epochs is None else TrainConfig(seed=seed, epochs=epochs)
    feats = {u.path.name: f for u, f in zip(utts, extract_features(tqdm(utts, desc="features", unit="clip")))}
    figures: dict = {"train_config": asdict(cfg), "data_sha256": checksum(root),
                     "train_speakers": sorted({u.speaker for u in train_utts}),
                     "held_out_speakers": sorted({u.speaker for u in held_utts})}
    if cv_folds:
        bar = tqdm(total=cv_folds, desc="cross-validation", unit="fold")
        cv = cross_validate(train_utts, [feats[u.path.name] for u in train_utts], cv_folds, cfg,
                            progress=lambda k, n: bar.update(1))
        bar.close()
        figures["cv"] = cv
        print(_summary(f"CV ({len(cv['folds'])} speaker folds over the training speakers)", cv))
    if out:
        bar = tqdm(total=cfg.epochs, desc="training", unit="epoch")

        def step(epoch: int, total: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")

        cnn = train_cnn([feats[u.path.name] for u in train_utts], [u.label for u in train_utts], cfg, progress=step)
        bar.close()
        held = report(held_utts, predict_proba(cnn, [feats[u.path.name] for u in held_utts]).argmax(1).tolist())
        figures["held_out"] = held
        print(_summary("held-out speakers 03+08", held))
        digest = save_checkpoint(cnn, out, meta=figures)
        figures["checkpoint_sha256"] = digest
        print(f"saved {out} (sha256 {digest[:16]}...)")
    if metrics_path:
        Path(metrics_path).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _summary(title: str, r: dict) -> str:
    rec = "  ".join(f"{e} {v:.2f}" for e, v in r["recall"].items())
    return (f"{title}: n={r['n']}  accuracy {r['accuracy']:.3f}  UAR {r['uar']:.3f}  "
            f"UAR f {r.get('uar_f', float('nan')):.3f}  UAR m {r.get('uar_m', float('nan')):.3f}\n  recall: {rec}")
