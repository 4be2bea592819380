#!/usr/bin/env bash
# Full held-out sweeps (speakers 03+08, 107 clips) with the shipped model, then the figures.
# Usage: benchmarks/sweep_full.sh [RESULTS_DIR] [extra `cloak sweep` options, e.g. --model PATH]
# Resumable: rerunning skips every (clip, steps) already in RESULTS_DIR/*/cache and every
# transcript in ~/.cache/cloak/transcripts.jsonl. Wall times go to RESULTS_DIR/timings.txt.
set -euo pipefail
out="${1:-eval/results}"
shift || true
mkdir -p "$out"
run() {  # name, then sweep options
    local name="$1"; shift
    local t0=$SECONDS
    cloak sweep "$@" --out "$out/$name" "${extra[@]}"
    echo "$name: $((SECONDS - t0)) s wall ($*)" | tee -a "$out/timings.txt"
}
extra=("$@")
run spec_true   --domain spec --labels true
run spec_pseudo --domain spec --labels pseudo
run wave_pseudo --domain wave --labels pseudo --asr whisper
run wave_true   --domain wave --labels true --asr none
cloak plot "$out" -o "$out/figures"
