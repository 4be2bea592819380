"""Do the big brute-force functional sets hear the emotion through the cloak?

The bench's judges include two openSMILE sets (eGeMAPS, ComParE 2016). This script trains the
same kind of linear judge (standardize -> class-balanced logistic regression, ``l2`` chosen by
speaker-grouped CV) on three classic challenge sets: IS09 (384 functionals, the INTERSPEECH 2009
Emotion Challenge), emobase (988) and ComParE 2016 (6373). Each is trained on the EmoDB training
speakers and reads held-out 03+08 clean, cloaked (``--mode``, the default mode unless told, with
any ``--set CUE=X``), and with white noise at 30 dB SNR (the bench's noise control). It prints
accuracy and hiding ratio.

    OMP_NUM_THREADS=1 python benchmarks/functional_sets.py                    # ~8 min the first time
    OMP_NUM_THREADS=1 python benchmarks/functional_sets.py --mode neutral --set steadiness=1
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from cloak.chain import DEFAULT_MODE, MODES, Chain
from cloak.eval.adaptive import training_clips
from cloak.eval.bench import NOISE_SNR_DB, add_noise, held_out
from cloak.eval.judges.probe import fit_probe, select_l2
from cloak.eval.judges.smile import extractor, feature_id
from cloak.eval.judges.store import cached_features
from cloak.model import load_recognizer

SETS = ("IS09", "emobase", "ComParE_2016")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=[m for m, v in MODES.items() if v.neutralize is not None], default=DEFAULT_MODE,
                   help="the cloaking mode (default: %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="CUE=X", help="a neutralizer setting, e.g. steadiness=1")
    args = p.parse_args()
    settings = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    mode = MODES[args.mode]
    mode = replace(mode, neutralize=replace(mode.neutralize, **settings))
    chain = Chain(load_recognizer(), mode)
    train, test = training_clips("emodb"), held_out("emodb")
    cloaked = [chain.cloak(w, 16_000)[0] for w in test.waves]
    noisy = add_noise(test.waves, [NOISE_SNR_DB] * len(test.waves), seed=0)
    n_classes = int(train.labels.max()) + 1
    chance = 1 / n_classes
    tag = ",".join(args.set) or "default"
    print(f"EmoDB 03+08 ({len(test.waves)} clips), cloak: {args.mode} mode {tag}; judges trained on {len(train.waves)} training clips")
    for name in SETS:
        extract, fid = extractor(name), feature_id(name)
        x_train = cached_features(f"{fid}-emodb-train", train.waves, extract)
        l2, _ = select_l2(x_train, train.labels, train.speakers, n_classes)
        probe = fit_probe(x_train, train.labels, n_classes, l2)
        acc = {}
        for cond, waves in (("clean", test.waves), ("cloaked", cloaked), ("noise", noisy)):
            x = cached_features(f"{fid}-emodb-heldout-clean", waves, extract) if cond == "clean" else \
                np.stack([extract(w) for w in waves])
            acc[cond] = float((probe.predict_proba(x).argmax(axis=1) == test.labels).mean())
        hide = {c: (acc["clean"] - acc[c]) / (acc["clean"] - chance) for c in ("cloaked", "noise")}
        print(f"{name:13s} l2 {l2:g}: accuracy clean {acc['clean']:.3f}, cloaked {acc['cloaked']:.3f} "
              f"(hiding {hide['cloaked']:.2f}), noise {acc['noise']:.3f} (hiding {hide['noise']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
