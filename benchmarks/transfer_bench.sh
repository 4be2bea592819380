#!/usr/bin/env bash
# The transfer bench behind the README's "hidden from whom" table, the ablation and the frontier.
# Every judge is independent (never used to craft). Results land in eval/results/bench/.
# Cloaked audio and per-clip scores are cached under $CLOAK_CACHE/bench, so a rerun is quick.
#   bash benchmarks/transfer_bench.sh            # ~1 h on a quiet 2-core CPU the first time
set -euo pipefail
export OMP_NUM_THREADS=1
out=eval/results/bench
mkdir -p "$out"

# 1. The default mode and the subtle mode on both corpora (EmoDB 03+08, RAVDESS actors 17-20).
cloak bench --mode neutral --out "$out/neutral" -q
cloak bench --mode subtle --corpus emodb --out "$out/subtle" -q

# 2. Ablation on EmoDB: each stage left out, and the adversarial stage added on top.
for cue in pitch_range pitch_level loudness tilt rate; do
  cloak bench --mode neutral --corpus emodb --no-asr --set "$cue=0" --out "$out/ablation/without_$cue" -q
done
cloak bench --mode neutral --corpus emodb --no-asr --attack medium --out "$out/ablation/with_attack" -q

# 3. Frontier on EmoDB: hiding per judge against DNSMOS and WER across neutralizer strengths.
cloak bench --mode neutral --corpus emodb --frontier 0,0.25,0.5,0.75,1 --out "$out/frontier" -q

cloak bench --table "$out/neutral" "$out/subtle" "$out"/ablation/* | tee "$out/summary.md"
