"""Cloaking speed on a 3 s clip: one attack step against one bare forward+backward pass.

    python benchmarks/cloak_speed.py [--device cpu|cuda] [--repeat 10]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import soundfile as sf
import torch

from cloak.cloaker import DEFAULT_STRENGTH, STRENGTHS, Cloaker
from cloak.emodb import find_emodb, load_emodb, split
from cloak.model import load_recognizer


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    held = split(load_emodb(find_emodb()))[1]
    wave = np.concatenate([sf.read(str(u.path), dtype="float32")[0] for u in held[:3]])[: 3 * 16000]
    model = load_recognizer(device=args.device)
    x = torch.from_numpy(wave)[None].to(args.device)

    def fwd_bwd():
        xr = x.clone().requires_grad_(True)
        torch.autograd.grad(model(xr).logsumexp(-1).sum(), xr)

    cfg = STRENGTHS[DEFAULT_STRENGTH]
    full = Cloaker(model, cfg, args.device)
    bare = best_of(fwd_bwd, args.repeat)
    t0 = best_of(lambda: full.with_config(steps=0).perturbation(wave), args.repeat)
    tn = best_of(lambda: full.perturbation(wave), args.repeat)
    per_step = (tn - t0) / cfg.steps
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, clip {len(wave) / 16000:.1f} s")
    print(f"bare forward+backward: {bare * 1e3:.1f} ms")
    print(f"one attack step: {per_step * 1e3:.1f} ms ({per_step / bare:.2f}x a bare forward+backward)")
    print(f"overhead (envelope, clean and final predictions): {t0 * 1e3:.1f} ms")
    print(f"default setting ({DEFAULT_STRENGTH}, {cfg.steps} steps): {tn * 1e3:.0f} ms, "
          f"real-time factor {tn / (len(wave) / 16000):.4f}")


if __name__ == "__main__":
    main()
