"""Quality baseline on the 107 held-out EmoDB clips (speakers 03+08): what the metrics say before any cloak.

    OMP_NUM_THREADS=1 python benchmarks/quality_baseline.py [--world-dnsmos] [--out eval/results/quality_baseline.txt]

Mean DNSMOS P.835 of the clean clips, and the speaker similarity of each clip to (a) itself with
white noise at 35 dB SNR and (b) itself resynthesized by the WORLD vocoder (dio, stonemask,
cheaptrick, d4c, synthesize; 5 ms frames); ``--world-dnsmos`` adds DNSMOS of (b), doubling the
time. WORLD needs ``pyworld``.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from cloak.audio import atomic_path
from cloak.emodb import find_emodb, load_emodb, split
from cloak.eval.quality import DNSMOS, SAMPLE_RATE, SpeakerSimilarity, cosine

WORLD_FRAME_MS = 5.0


def white_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(wave.size)
    noise *= np.sqrt(np.mean(wave.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


def world_resynthesis(wave: np.ndarray) -> np.ndarray:
    """WORLD analysis and synthesis with no change, cut or zero-padded to the input's length."""
    import pyworld

    x = wave.astype(np.float64)
    f0, t = pyworld.dio(x, SAMPLE_RATE, frame_period=WORLD_FRAME_MS)
    f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE)
    sp = pyworld.cheaptrick(x, f0, t, SAMPLE_RATE)
    ap = pyworld.d4c(x, f0, t, SAMPLE_RATE)
    y = pyworld.synthesize(f0, sp, ap, SAMPLE_RATE, frame_period=WORLD_FRAME_MS)[: wave.size]
    return np.pad(y, (0, wave.size - y.size)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("eval/results/quality_baseline.txt"))
    ap.add_argument("--world-dnsmos", action="store_true")
    args = ap.parse_args()
    held = split(load_emodb(find_emodb()))[1]
    dnsmos, speaker = DNSMOS(), SpeakerSimilarity()
    rng = np.random.default_rng(0)
    rows = []
    start = time.perf_counter()
    for u in held:
        wave = sf.read(str(u.path), dtype="float32")[0]
        world = world_resynthesis(wave)
        clean_mos = dnsmos.score(wave)
        world_ovrl = dnsmos.score(world).ovrl if args.world_dnsmos else np.nan
        embedding = speaker.embed(wave)
        rows.append((u.path.name[:2], clean_mos.ovrl, clean_mos.sig, clean_mos.bak, world_ovrl,
                     cosine(embedding, speaker.embed(white_noise(wave, 35.0, rng))),
                     cosine(embedding, speaker.embed(world))))
    table = np.array([r[1:] for r in rows])
    speakers = np.array([r[0] for r in rows])
    lines = [f"# {__doc__.splitlines()[0]}",
             f"# command: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} python benchmarks/quality_baseline.py"
             f"{' --world-dnsmos' if args.world_dnsmos else ''}",
             f"# {len(rows)} clips, {time.perf_counter() - start:.0f} s wall",
             "subset   n  dnsmos_ovrl  dnsmos_sig  dnsmos_bak  world_ovrl  spk_sim_noise35  spk_sim_world"]
    for name, mask in (("all", np.ones(len(rows), bool)), ("03 (m)", speakers == "03"), ("08 (f)", speakers == "08")):
        m = table[mask].mean(axis=0)
        lines.append(f"{name:7s} {mask.sum():3d}  {m[0]:11.3f} {m[1]:11.3f} {m[2]:11.3f} {m[3]:11.3f}"
                     f"  {m[4]:15.3f}  {m[5]:13.3f}")
    lines.append(f"min over clips: spk_sim_noise35 {table[:, 4].min():.3f}, spk_sim_world {table[:, 5].min():.3f}; "
                 f"clips with spk_sim_world < 0.80: {(table[:, 5] < 0.80).sum()}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(args.out)
    tmp.write_text(text)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
