"""Real-time factor of each cloaking mode, one process, on held-out EmoDB clips.

Times :meth:`cloak.chain.Chain.cloak` (analysis, neutralizing, synthesis, attack and the
surrogate's before/after readings) on the first N held-out clips at 16 kHz, on one of them at
48 kHz stereo, and on all N joined into one recording, and prints seconds of work per second of
audio. Also the neutral mode's crafted stages with their words guard: band gains (``--band-gain 3``)
and the attack (``--strength medium``), both told the language; the thorough mode as a user runs it
(the language detected from the same encoding of the window) and told it. The guard transcribes each piece in a
window of the piece and 2 s, at least 8 s, so the shortest clips pay the most.

    OMP_NUM_THREADS=1 python benchmarks/mode_speed.py [--clips 20] [--mode thorough ...] [--device cpu|cuda]

Torch runs on one thread (``CLOAK_THREADS`` as in ``cloak apply``); the words guard's Whisper on every core.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import soundfile as sf
import soxr
import torch

from cloak.bandgain import BandGainConfig
from cloak.chain import MODES, Chain
from cloak.cloaker import STRENGTHS
from cloak.emodb import find_emodb, load_emodb, split
from cloak.model import load_recognizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", action="append", help="time only this mode (repeatable; default all of those below)")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("CLOAK_THREADS", "1")))
    held = split(load_emodb(find_emodb()))[1][: args.clips]
    waves = [sf.read(str(u.path), dtype="float32")[0] for u in held]
    audio_s = sum(len(w) for w in waves) / 16_000
    model = load_recognizer(device=args.device)
    hi = np.stack([soxr.resample(waves[0], 16_000, 48_000)] * 2, axis=1)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {len(waves)} clips, {audio_s:.1f} s of audio, "
          f"load {os.getloadavg()[0]:.2f}")
    modes = {**MODES, "neutral --band-gain 3": replace(MODES["neutral"], bands=BandGainConfig(language="de")),
             "neutral --strength medium": replace(MODES["neutral"], attack=replace(STRENGTHS["medium"], words=1.0, language="de")),
             "thorough --language de": replace(MODES["thorough"], attack=replace(MODES["thorough"].attack, language="de"))}
    unknown = set(args.mode or ()) - set(modes)
    if unknown:
        ap.error(f"unknown mode {sorted(unknown)}; choose from {sorted(modes)}")
    joined = np.concatenate(waves)
    for name, mode in modes.items():
        if args.mode and name not in args.mode:
            continue
        chain = Chain(model, mode, args.device)
        chain.cloak(waves[0], 16_000)  # warm-up
        t = time.perf_counter()
        for w in waves:
            chain.cloak(w, 16_000)
        rtf = (time.perf_counter() - t) / audio_s
        t = time.perf_counter()
        chain.cloak(hi, 48_000)
        rtf_hi = (time.perf_counter() - t) / (len(hi) / 48_000)
        t = time.perf_counter()
        chain.cloak(joined, 16_000)
        rtf_long = (time.perf_counter() - t) / audio_s
        print(f"{name:<26} real-time factor {rtf:.3f} per clip at 16 kHz mono, {rtf_hi:.3f} at 48 kHz stereo, "
              f"{rtf_long:.3f} on the {audio_s:.0f} s joined")


if __name__ == "__main__":
    main()
