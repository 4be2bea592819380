"""Whisper baseline on the clean held-out EmoDB clips (speakers 03 and 08): WER and real-time factor.

Usage: python benchmarks/asr_baseline.py [--emodb DIR] [--beam-size 5 [1 ...]] [--cpu-threads N]
The real-time factor is transcription time over audio duration (model loading excluded).
"""
from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

from cloak.audio import load_audio, to_mono
from cloak.emodb import find_emodb, load_emodb, split
from cloak.eval.asr import WhisperTranscriber, load_whisper
from cloak.eval.text import normalize, utterance_wers, wer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emodb", help="EmoDB folder (default: find_emodb())")
    parser.add_argument("--beam-size", type=int, nargs="+", default=[5])
    parser.add_argument("--cpu-threads", type=int, default=1, help="CTranslate2 threads (its int8 results depend on them)")
    parser.add_argument("--worst", type=int, default=5, help="how many worst transcripts to show")
    args = parser.parse_args()

    root = find_emodb(args.emodb)
    if root is None:
        raise SystemExit("EmoDB not found; pass --emodb or set CLOAK_EMODB")
    _, held_out = split(load_emodb(root))
    clips = []
    for u in held_out:
        data, info = load_audio(u.path)
        clips.append((u, to_mono(data), info.samplerate, info.duration))
    audio_s = sum(c[3] for c in clips)
    print(f"{len(clips)} held-out clips, {audio_s:.1f} s of audio, {os.cpu_count()} CPU cores")

    t0 = time.perf_counter()
    load_whisper(None, args.cpu_threads)
    print(f"model load (bundled whisper-base, int8, CPU): {time.perf_counter() - t0:.2f} s")

    for beam in args.beam_size:
        asr = WhisperTranscriber("de", beam_size=beam, cpu_threads=args.cpu_threads)
        hyps = []
        t0 = time.perf_counter()
        for _, wave, rate, _ in clips:
            hyps.append(asr.transcribe(wave, rate))
        elapsed = time.perf_counter() - t0
        refs = [u.text for u, *_ in clips]
        per = utterance_wers(refs, hyps)
        print(f"\nbeam_size={beam}: WER {wer(refs, hyps):.4f} (corpus), mean per-clip {sum(per) / len(per):.4f}, "
              f"{sum(p == 0 for p in per)}/{len(per)} clips exact")
        print(f"  transcription {elapsed:.1f} s, real-time factor {elapsed / audio_s:.3f} "
              f"({elapsed / len(clips):.2f} s per clip)")
        groups: dict[str, list[int]] = defaultdict(list)
        for i, (u, *_) in enumerate(clips):
            groups[f"speaker {u.speaker}"].append(i)
            groups[u.emotion].append(i)
        for name, idx in groups.items():
            print(f"  {name:<12} n={len(idx):>3}  WER {wer([refs[i] for i in idx], [hyps[i] for i in idx]):.4f}")
        for i in sorted(range(len(per)), key=lambda i: -per[i])[: args.worst]:
            print(f"  worst: {clips[i][0].path.name} WER {per[i]:.2f}  ref={normalize(refs[i])!r}  hyp={normalize(hyps[i])!r}")


if __name__ == "__main__":
    main()
