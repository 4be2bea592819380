"""Where the neutral mode's listener cost comes from: DNSMOS and speaker similarity with each cue left out.

The bench's ablation measures what each cue *hides*; this one what each costs the listener, on a
subset of one corpus's held-out clips (every ``--every``-th): DNSMOS P.835 (OVRL, SIG, BAK; the
reference's 1 s hop, as the bench) and GE2E speaker similarity to the clean clip, for the neutral mode,
the neutral mode with each cue off, the vocoder alone (calm 0) and the default (thorough) mode. One
control changes no sound at all: the clean clip with its leading and trailing silence cut to
0.12 s (the neutralizer's longest pause), which DNSMOS alone may read as a loss.

    OMP_NUM_THREADS=1 python benchmarks/listener_ablation.py --corpus ravdess   # ~25 min
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from cloak.chain import DEFAULT_MODE, MODES, Chain
from cloak.eval.bench import held_out
from cloak.eval.quality import DNSMOS, SpeakerSimilarity
from cloak.model import load_recognizer
from cloak.neutralizer import MAX_PAUSE_S

CUES = ("effort", "voice_quality", "rate", "pitch_range", "pitch_level")


def trim_silence(wave: np.ndarray, keep_s: float = MAX_PAUSE_S, below_peak_db: float = 40.0) -> np.ndarray:
    """``wave`` (16 kHz) from ``keep_s`` before its first 10 ms frame within ``below_peak_db`` of the loudest
    to ``keep_s`` after its last."""
    hop = 160
    n = len(wave) // hop
    db = 20 * np.log10(np.sqrt(np.mean(wave[: n * hop].reshape(n, hop) ** 2, axis=1)) + 1e-10)
    active = np.flatnonzero(db > db.max() - below_peak_db)
    keep = round(keep_s * 100)
    return wave[max(0, active[0] - keep) * hop: min(n, active[-1] + 1 + keep) * hop]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", choices=("emodb", "ravdess"), default="ravdess")
    p.add_argument("--every", type=int, default=4, help="take every N-th held-out clip (default: %(default)s)")
    args = p.parse_args()
    torch.set_num_threads(1)
    clips = held_out(args.corpus)
    waves = clips.waves[:: args.every]
    dnsmos, speaker, model = DNSMOS(), SpeakerSimilarity(), load_recognizer()
    print(f"{args.corpus} held-out, every {args.every}th clip: {len(waves)} clips")

    def report(name: str, outs: list[np.ndarray], seconds: float | None = None) -> None:
        scores = [dnsmos.score(o) for o in outs]
        sim = np.mean([speaker.similarity(w, o) for w, o in zip(waves, outs)])
        took = f" (cloaked in {seconds:.0f} s)" if seconds is not None else ""
        print(f"{name:34s} OVRL {np.mean([s.ovrl for s in scores]):.3f}  SIG {np.mean([s.sig for s in scores]):.3f}  "
              f"BAK {np.mean([s.bak for s in scores]):.3f}  similarity {sim:.3f}  length {np.mean([len(o) for o in outs]) / 16_000:.2f} s"
              f"{took}", flush=True)

    report("clean", waves)
    report(f"clean, silence cut to {MAX_PAUSE_S:g} s at the ends", [trim_silence(w) for w in waves])
    neutral = MODES["neutral"]
    runs = {"neutral mode": neutral, "vocoder alone (calm 0)": neutral.with_strength(0.0),
            **{f"neutral, without {cue}": neutral.with_settings(**{cue: 0.0}) for cue in CUES},
            f"default ({DEFAULT_MODE})": MODES[DEFAULT_MODE]}
    for name, mode in runs.items():
        chain = Chain(model, mode)
        t = time.perf_counter()
        outs = [chain.cloak(w, 16_000)[0] for w in waves]
        report(name, outs, time.perf_counter() - t)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
