"""Command line: ``cloak predict|apply|train|data|sweep|plot|gui``. Turns argv into library calls."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cloak import __version__
from cloak.audio import AudioError
from cloak.emodb import DatasetError
from cloak.model import ModelError

if TYPE_CHECKING:
    from cloak.cloaker import CloakConfig

log = logging.getLogger("cloak")
USER_ERRORS = (AudioError, DatasetError, ModelError, ValueError, OSError)


def _device(name: str) -> str:
    import torch

    # The CNN is small: one thread is faster than two here and never fights other processes
    # for cores (OpenMP spin-waiting made 2 threads 40x slower beside a busy process).
    torch.set_num_threads(int(os.environ.get("CLOAK_THREADS", "1")))

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return name


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from cloak.audio import load_audio, to_model_rate
    from cloak.emodb import EMOTIONS
    from cloak.features import SAMPLE_RATE
    from cloak.model import load_recognizer

    device = _device(args.device)
    model = load_recognizer(args.model, device)
    failed = 0
    if not args.json:
        print(f"{'file':<32} {'emotion':<10} " + " ".join(f"{e[:7]:>7}" for e in EMOTIONS))
    for f in args.files:
        try:
            data, info = load_audio(f)
            wave = torch.from_numpy(to_model_rate(data, info.samplerate, SAMPLE_RATE))[None].to(device)
            with torch.no_grad():
                probs = torch.softmax(model(wave), -1)[0].cpu().numpy()
        except USER_ERRORS as e:
            print(f"cloak: {e}", file=sys.stderr)
            failed += 1
            continue
        emotion = EMOTIONS[int(np.argmax(probs))]
        if args.json:
            print(json.dumps({"file": str(f), "emotion": emotion,
                              "probabilities": {e: round(float(p), 6) for e, p in zip(EMOTIONS, probs)}}))
        else:
            name = str(f) if len(str(f)) <= 32 else "..." + str(f)[-29:]
            print(f"{name:<32} {emotion:<10} " + " ".join(f"{p:7.3f}" for p in probs))
    return 1 if failed else 0


def _cloak_config(args: argparse.Namespace, preset: CloakConfig | None = None) -> CloakConfig:
    """The attack settings the options describe, on top of ``--strength``, else the mode's ``preset``."""
    from dataclasses import replace

    from cloak.cloaker import DEFAULT_STRENGTH, STRENGTHS

    cfg = STRENGTHS[args.strength] if args.strength else preset or STRENGTHS[DEFAULT_STRENGTH]
    changes = {k: v for k, v in (("steps", args.steps), ("epsilon", args.epsilon), ("min_snr_db", args.snr),
                                 ("objective", args.objective)) if v is not None}
    return replace(cfg, **changes)


def _mode(args: argparse.Namespace):
    """The :class:`cloak.chain.Mode` the options describe."""
    from dataclasses import replace

    from cloak.chain import MODES

    mode = MODES[args.mode]
    attack_options = any(v is not None for v in (args.strength, args.steps, args.epsilon, args.snr, args.objective))
    guard = {"words": 0.0 if args.no_words_guard else 1.0, "language": args.language}
    if mode.attack is not None or attack_options:
        schedule = {"words_every": mode.attack.words_every} if mode.attack is not None else {}
        mode = replace(mode, attack=replace(_cloak_config(args, mode.attack), **schedule,
                                            **(guard if mode.neutralize is not None else {})))
    if args.calm is not None:
        mode = mode.with_strength(args.calm)
    if args.flatten_loudness:
        try:
            mode = mode.flatten_loudness()
        except ValueError as e:
            raise ValueError(f"--flatten-loudness: {e}") from None
    if args.band_gain is not None:
        from cloak.bandgain import BandGainConfig

        try:
            mode = replace(mode, bands=BandGainConfig(max_gain_db=args.band_gain, **guard))
        except ValueError as e:
            raise ValueError(f"--band-gain: {e}") from None
    crafted = mode.neutralize is not None and (mode.bands is not None or mode.attack is not None)
    if (args.no_words_guard or args.language) and not crafted:
        raise ValueError("--no-words-guard and --language go with a crafted stage (the thorough mode, or "
                         "--band-gain or --strength in neutral mode): the words guard is part of it")
    return mode


def cmd_apply(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cloak import batch
    from cloak.chain import Chain
    from cloak.model import load_recognizer

    if args.cluster is not None:
        from cloak.ray_address import check_reachable

        check_reachable(args.cluster)  # before anything slow: an unreachable cluster fails at once
    mode = _mode(args)
    jobs = batch.plan(args.paths, args.output)
    if not jobs:
        raise ValueError("no audio files found in " + ", ".join(args.paths))
    where = None if args.workers is None and args.cluster is None else _cluster_config(args)
    model = load_recognizer(args.model, _device(args.device))  # also checks the checkpoint before any work
    scorer = None  # builds the readout: here for one process, once in each worker with --workers/--cluster
    if args.judge != "none" or args.quality:
        from functools import partial

        from cloak.eval.readout import DEFAULT_JUDGE, Readout

        scorer = partial(Readout, DEFAULT_JUDGE if args.judge == "none" else args.judge, quality=args.quality)
    readout = scorer() if scorer is not None and where is None else None
    durations = {j: _duration(j) for j in jobs}
    bar = tqdm(total=round(sum(durations.values()), 1), unit="s", desc="cloaking", disable=args.quiet,
               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]{postfix}")
    state = {"base": 0.0, "files": 0, "partial": {}}  # partial: seconds done in files still in flight
    in_folder = args.output and not batch.output_is_file(args.paths, args.output)
    report_path = args.report or (Path(args.output) / "cloak-report.csv" if in_folder else None)
    report = None
    if report_path:
        from cloak.eval.readout import FIELDS

        report = batch.RunReport(report_path, resume=args.resume, extra_fields=FIELDS if scorer is not None else ())

    def show():
        bar.n = round(state["base"] + sum(state["partial"].values()), 1)
        bar.refresh()

    def on_progress(job, fraction):
        state["partial"][job] = fraction * durations[job]
        show()

    def on_done(outcome):
        state["partial"].pop(outcome.job, None)
        state["base"] += durations[outcome.job]
        state["files"] += 1
        bar.set_postfix_str(f"{state['files']}/{len(jobs)} files", refresh=False)
        show()
        if outcome.status == "done" and readout is not None:
            outcome.extra = readout.score_files(outcome.job.src, outcome.job.dest)
        if report:
            report.add(outcome)
        if outcome.status == "done" and not args.quiet:
            r = outcome.report
            change = f"SNR {r.snr_db:.1f} dB" if r.duration_out_s is None else f"{r.duration_s:.1f} s -> {r.duration_out_s:.1f} s"
            heard = (f"  {outcome.extra['judge']} (independent): {outcome.extra['judge_before']} -> "
                     f"{outcome.extra['judge_after']}" if outcome.extra else "")
            tqdm.write(f"{outcome.job.dest}  surrogate: {r.emotion_before} -> {r.emotion_after}{heard}  {change}")

    callbacks = dict(overwrite=args.overwrite, resume=args.resume, on_progress=on_progress, on_done=on_done)
    if where is None:
        result = batch.run(jobs, Chain(model, mode, _device(args.device)), **callbacks)
    else:
        from cloak import cluster

        result = cluster.run(jobs, args.model, mode, _device(args.device), where, scorer=scorer, **callbacks)
    bar.close()
    if report:
        if where is not None:  # workers finish in any order; the report lists the files as planned
            order = {str(j.src): k for k, j in enumerate(jobs)}
            report.rows.sort(key=lambda row: order.get(row["file"], len(order)))
            report.write()
        print(f"report: {report_path}", file=sys.stderr)
    done = sum(o.status == "done" for o in result.outcomes)
    skipped = sum(o.status == "skipped" for o in result.outcomes)
    print(f"{done} cloaked, {skipped} skipped, {len(result.failed)} failed", file=sys.stderr)
    for o in result.failed:
        print(f"  failed: {o.error}", file=sys.stderr)
    return 1 if result.failed else 0


def _cluster_config(args: argparse.Namespace):
    """Where ``--workers``/``--cluster`` run."""
    try:
        from cloak import cluster
    except ImportError as e:
        raise ValueError(f"--workers/--cluster need Ray ({e}): pip install 'cloak[cluster]'") from None

    return cluster.ClusterConfig(workers=args.workers, address=args.cluster,
                                 threads=int(os.environ.get("CLOAK_THREADS", "1")))


def _duration(job) -> float:
    from cloak.audio import probe

    try:
        return probe(job.src).duration
    except AudioError:
        return 0.0


def cmd_train(args: argparse.Namespace) -> int:
    from cloak.train import run_training

    return run_training(data=args.data, out=args.out, epochs=args.epochs, seed=args.seed,
                        cv_folds=args.folds if args.cv else 0, metrics_path=args.metrics)


def cmd_data(args: argparse.Namespace) -> int:
    from cloak.download import EMODB_URL, download_emodb

    dest = download_emodb(Path(args.dest), url=args.url or EMODB_URL, progress=not args.quiet)
    print(f"EmoDB ready in {dest}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from cloak.eval.sweep import main_sweep

    return main_sweep(args)


def cmd_plot(args: argparse.Namespace) -> int:
    from cloak.eval.plots import main_plot

    return main_plot(args)


def cmd_gui(args: argparse.Namespace) -> int:
    from cloak.gui.app import main

    return main([] if args.file is None else [args.file])


def build_parser() -> argparse.ArgumentParser:
    from cloak.attacks import OBJECTIVES
    from cloak.chain import DEFAULT_MODE, MODES
    from cloak.cloaker import DEFAULT_STRENGTH, STRENGTHS

    p = argparse.ArgumentParser(prog="cloak", description="Hide the emotion in a voice from speech-emotion recognizers.")
    p.add_argument("--version", action="version", version=f"cloak {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("predict", help="show the emotion a recognizer reads in audio files")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--json", action="store_true", help="one JSON object per line per file")
    s.add_argument("--model", help="checkpoint (default: the shipped EmoDB model)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("apply", help="cloak audio files or folders")
    s.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders (searched recursively)")
    s.add_argument("-o", "--output", metavar="OUT",
                   help="folder to mirror inputs under; for one input file, an audio file name such as calm.wav "
                        "(its extension picks the container) (default: NAME.cloaked.EXT beside each)")
    s.add_argument("--mode", default=DEFAULT_MODE, choices=list(MODES),
                   help="; ".join(f"{k}: {m.summary}" for k, m in MODES.items()) + " (default: %(default)s)")
    s.add_argument("--calm", type=float, metavar="X",
                   help=f"neutral and thorough modes: how far toward a calm delivery, 0 (vocoder only) to 1 (every cue all the way; "
                        f"default {MODES['neutral'].neutralize.strength:g})")
    s.add_argument("--flatten-loudness", action="store_true",
                   help="neutral and thorough modes: also flatten loudness dynamics (hides more from some recognizers, "
                        "costs clarity: more word errors, a less similar voice; see the README's ablation)")
    s.add_argument("--band-gain", type=float, metavar="DB",
                   help="neutral and thorough modes: also move an equalizer by up to DB dB per band, crafted against the surrogate "
                        "(e.g. 3; reaches other recognizers too; a words guard keeps what Whisper hears: README)")
    s.add_argument("--no-words-guard", action="store_true",
                   help="thorough mode, or --band-gain or --strength in neutral mode: craft without the words guard (faster; costs word errors)")
    s.add_argument("--language", metavar="CODE",
                   help="thorough mode, or --band-gain or --strength in neutral mode: the language spoken, for the words guard "
                        "(e.g. de, en; default: detected)")
    s.add_argument("--strength", choices=list(STRENGTHS),
                   help="adversarial stage preset (subtle and thorough modes; adds the stage to neutral): "
                        + "; ".join(f"{k}: {c.steps} steps, ~{c.snr_db:g} dB SNR" for k, c in STRENGTHS.items()))
    s.add_argument("--steps", type=int, help="attack steps (overrides the preset)")
    s.add_argument("--epsilon", type=float, help="cap on the perturbation, full-scale amplitude (e.g. 0.005)")
    s.add_argument("--snr", type=float, metavar="DB", help="SNR floor: never add more noise than this")
    s.add_argument("--objective", choices=sorted(OBJECTIVES), help="attack objective (default: topk)")
    s.add_argument("--judge", default="egemaps-svm", metavar="NAME",
                   help="independent judge whose reading before/after goes in the report ('none' to skip; "
                        "see `cloak judge list`; default: %(default)s)")
    s.add_argument("--quality", action="store_true",
                   help="also report speaker similarity, DNSMOS OVRL before/after and the words Whisper hears "
                        "before/after, with their word error rate (a few seconds a clip)")
    s.add_argument("--overwrite", action="store_true", help="replace existing outputs (never inputs)")
    s.add_argument("--resume", action="store_true", help="skip inputs whose output already exists")
    s.add_argument("--report", metavar="CSV", help="run report (default: OUTDIR/cloak-report.csv with -o)")
    s.add_argument("--model", help="checkpoint (default: the shipped EmoDB model)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--workers", type=int, metavar="N", help="cloak on N worker processes (Ray); with --cluster: at most N")
    s.add_argument("--cluster", metavar="HOST:PORT", help="run on the Ray cluster whose head is at HOST:PORT (run cloak on one of its nodes)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_apply)

    s = sub.add_parser("train", help="train the surrogate recognizer on EmoDB (training speakers only)")
    s.add_argument("--data", help="EmoDB folder (default: $CLOAK_EMODB or ../shared/data/emodb)")
    s.add_argument("--out", help="checkpoint to write (omit with --cv to only cross-validate)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--cv", action="store_true", help="speaker-independent cross-validation")
    s.add_argument("--folds", type=int, default=10, help="speaker folds for --cv (10 = leave-one-speaker-out)")
    s.add_argument("--metrics", metavar="JSON", help="write figures to this JSON file")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("data", help="download datasets")
    s.add_argument("dataset", choices=["emodb"])
    s.add_argument("--dest", required=True, metavar="DIR")
    s.add_argument("--url", help="alternative download URL")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_data)

    s = sub.add_parser("sweep", help="accuracy, UAR and WER against attack steps on held-out speakers")
    s.add_argument("--steps", default="0,1,2,3,5,10,20", metavar="K,K,...", help="attack step counts (default: %(default)s)")
    s.add_argument("--domain", default="wave", choices=["wave", "spec"],
                   help="wave: cloak the audio (the product); spec: attack the normalized log-mel input (research baseline)")
    s.add_argument("--labels", default="pseudo", choices=["pseudo", "true"],
                   help="attack the clean predictions (pseudo, as in use) or the true emotions (true)")
    s.add_argument("--asr", default="none", choices=["none", "whisper", "google", "sphinx"],
                   help="transcribe cloaked audio for the WER (google sends audio to Google; sphinx is English-only)")
    s.add_argument("--objective", choices=sorted(OBJECTIVES),
                   help=f"pseudo-label objective (default: the strength preset's, {STRENGTHS[DEFAULT_STRENGTH].objective})")
    s.add_argument("--strength", default=DEFAULT_STRENGTH, choices=list(STRENGTHS), help="waveform budget preset")
    s.add_argument("--spec-epsilon", type=float, metavar="EPS",
                   help="spectrogram-domain L-inf budget in normalized log-mel units (default: 0.1)")
    s.add_argument("--limit", type=int, metavar="N", help="only the first N held-out clips")
    s.add_argument("--out", metavar="DIR", help="results folder (default: sweep_DOMAIN_LABELS; --privacy: privacy)")
    s.add_argument("--transcripts", metavar="JSONL", help="transcript cache (default: ~/.cache/cloak/transcripts.jsonl)")
    s.add_argument("--language", default="de", help="ASR language (default: %(default)s)")
    s.add_argument("--privacy", action="store_true",
                   help="instead: per-sex breakdown and an adaptive attacker retrained on cloaked training audio")
    s.add_argument("--privacy-epochs", type=int, default=30, metavar="N", help="epochs for the adaptive attacker (default: %(default)s)")
    s.add_argument("--data", help="EmoDB folder (default: $CLOAK_EMODB or ../shared/data/emodb)")
    s.add_argument("--model", help="checkpoint (default: the shipped EmoDB model)")
    s.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sweep)
    s = sub.add_parser("plot", help="plot sweep results")
    s.add_argument("results", nargs="+", metavar="RESULTS", help="results.json files or folders holding them (searched recursively)")
    s.add_argument("-o", "--output", required=True, metavar="FIG",
                   help="folder for spec_true, spec_pseudo and wave (.png and .svg); a name with a suffix is used as a stem")
    s.set_defaults(func=cmd_plot)

    from cloak.eval.bench import add_bench_parser
    from cloak.eval.judges import add_judge_parser

    add_bench_parser(sub)
    add_judge_parser(sub)

    s = sub.add_parser("gui", help="open the desktop app")
    s.add_argument("file", nargs="?", help="audio file to open")
    s.set_defaults(func=cmd_gui)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"cloak: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cloak: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
