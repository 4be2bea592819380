#!/usr/bin/env bash
# The transfer bench behind the README's "hidden from whom" table, the ablation and the frontier.
# Every judge is independent (never used to craft). Results land in eval/results/bench/.
# Cloaked audio and per-clip scores are cached under $CLOAK_CACHE/bench, so a rerun is quick.
#   bash benchmarks/transfer_bench.sh            # ~1.5 h on a quiet 2-core CPU the first time
set -euo pipefail
export OMP_NUM_THREADS=1
out=eval/results/bench
mkdir -p "$out"

# 1. Frontier on EmoDB 03+08: hiding per judge against DNSMOS, speaker similarity and WER across
#    neutralizer strengths; strength_0.85 is the default mode's row, strength_1 every cue all the way.
cloak bench --mode neutral --corpus emodb --frontier 0,0.4,0.7,0.85,1 --out "$out/frontier" -q

# 1b. `--gentle` (consonants and pauses never turned up) at calm 0.7 and 0.85, with the listener's figures.
for s in 0.7 0.85; do
  cloak bench --mode neutral --corpus emodb --strength "$s" --set consonant_boost=0 --out "$out/gentle_$s" -q
done

# 2. The default mode on RAVDESS actors 17-20 (judges only: the listener targets are set on
#    EmoDB 03+08), and the subtle mode on EmoDB.
cloak bench --mode neutral --corpus ravdess --no-quality --out "$out/neutral_ravdess" -q
cloak bench --mode neutral --corpus ravdess --no-quality --strength 1 --out "$out/neutral_ravdess_calm1" -q
cloak bench --mode subtle --corpus emodb --no-asr --out "$out/subtle" -q  # its WER: cloak sweep (eval/results/wave_pseudo)

# 3. Ablation at the default on EmoDB (judges only; the listener's cost of each strength is in the
#    frontier): each cue left out, and the adversarial stage added on top.
for cue in pitch_range pitch_level loudness effort rate voice_quality; do
  cloak bench --mode neutral --corpus emodb --no-quality --set "$cue=0" --out "$out/ablation/without_$cue" -q
done
cloak bench --mode neutral --corpus emodb --no-quality --attack medium --out "$out/ablation/with_attack" -q

cloak bench --table "$out"/frontier/strength_* "$out"/gentle_* "$out/neutral_ravdess" "$out/neutral_ravdess_calm1" "$out/subtle" "$out"/ablation/* | tee "$out/summary.md"
