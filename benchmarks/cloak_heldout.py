"""Cloak every held-out EmoDB clip (speakers 03+08) and report what the surrogate still recognizes.

    python benchmarks/cloak_heldout.py                      # default setting, held-out speakers
    python benchmarks/cloak_heldout.py --speakers train --limit 120 --objective ce   # choosing defaults

Prints accuracy (against true labels), UAR, the share of clips whose clean prediction survives,
mean/min SNR and the real-time factor.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import soundfile as sf
import torch

from cloak.attacks import OBJECTIVES
from cloak.cloaker import DEFAULT_STRENGTH, STRENGTHS, Cloaker, snr_db
from cloak.emodb import EMOTIONS, find_emodb, load_emodb, split
from cloak.metrics import accuracy, uar
from cloak.model import load_recognizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speakers", choices=["held-out", "train"], default="held-out")
    ap.add_argument("--strength", default=DEFAULT_STRENGTH, choices=list(STRENGTHS))
    ap.add_argument("--steps", type=int)
    ap.add_argument("--snr", type=float, help="target SNR (overrides the preset)")
    ap.add_argument("--objective", choices=sorted(OBJECTIVES))
    ap.add_argument("--limit", type=int, help="every k-th clip so that about this many are used")
    args = ap.parse_args()
    torch.manual_seed(0)
    train, held = split(load_emodb(find_emodb()))
    utts = held if args.speakers == "held-out" else train
    if args.limit and args.limit < len(utts):
        utts = utts[:: len(utts) // args.limit][: args.limit]
    cfg = STRENGTHS[args.strength]
    changes = {k: v for k, v in (("steps", args.steps), ("snr_db", args.snr), ("objective", args.objective)) if v is not None}
    cloaker = Cloaker(load_recognizer(), replace(cfg, **changes))
    y, clean, after, snrs, seconds, audio = [], [], [], [], 0.0, 0.0
    for u in utts:
        wave, _ = sf.read(str(u.path), dtype="float32")
        t = time.perf_counter()
        delta, p0, p1 = cloaker.perturbation(wave)
        seconds += time.perf_counter() - t
        audio += len(wave) / 16000
        y.append(u.label)
        clean.append(int(np.argmax(p0)))
        after.append(int(np.argmax(p1)))
        snrs.append(snr_db(wave, delta))
    n = len(EMOTIONS)
    c = cloaker.config
    print(f"{args.speakers} speakers, {len(utts)} clips, strength {args.strength}: steps {c.steps}, "
          f"target SNR {c.snr_db:g} dB, objective {c.objective}")
    print(f"clean:   accuracy {accuracy(y, clean):.3f}  UAR {uar(y, clean, n):.3f}")
    print(f"cloaked: accuracy {accuracy(y, after):.3f}  UAR {uar(y, after, n):.3f}  "
          f"clean prediction kept {accuracy(clean, after):.3f}")
    print(f"SNR: mean {np.mean(snrs):.1f} dB  min {np.min(snrs):.1f} dB")
    print(f"speed: {seconds:.1f} s for {audio:.1f} s of audio, real-time factor {seconds / audio:.4f}")


if __name__ == "__main__":
    main()
