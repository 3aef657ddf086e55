#!/usr/bin/env bash
# Train one run to a wall-clock deadline, with the full cosine schedule.
#
#   scripts/train-budget.sh UNTIL RUN_DIR [r2unet train args without --out/--epochs/--resume]
#
# UNTIL is a Unix time (`date +%s`). The run starts with a provisional --epochs, times its
# first epochs, stops after a completed epoch, and resumes (--resume --epochs N) with the N
# that ends before UNTIL, so the learning rate still decays to its floor when time is short
# (a GPU lent for minutes, say). The first epoch's time includes kernel autotuning, so N errs
# low. R2UNET names the binary (default: r2unet on PATH). Everything goes to RUN_DIR/train.out.
set -euo pipefail

until_s=$1
run=$2
shift 2
bin=${R2UNET:-r2unet}
provisional=1000
mkdir -p "$run"
out="$run/train.out"

epochs_done() { [ -f "$run/log.csv" ] && echo $(($(wc -l <"$run/log.csv") - 1)) || echo 0; }
# Seconds of epoch $1 (column 7 of log.csv).
epoch_seconds() { awk -F, -v e="$1" 'NR == e + 1 { print $7 }' "$run/log.csv"; }

pid=
# A timeout or kill aimed at this script also stops the training it started.
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; exit 143' TERM INT
"$bin" train "$@" --out "$run" --epochs "$provisional" >>"$out" 2>&1 &
pid=$!
# Size on epoch 2 when there is time for it: epoch 1 pays for autotuning and data loading.
want=1
while kill -0 "$pid" 2>/dev/null; do
    done_now=$(epochs_done)
    if [ "$done_now" -ge 1 ] && [ "$want" -eq 1 ]; then
        t1=$(epoch_seconds 1)
        left=$((until_s - $(date +%s)))
        if awk -v t="$t1" -v l="$left" 'BEGIN { exit !(t * 6 < l) }'; then want=2; fi
    fi
    [ "$done_now" -ge "$want" ] && break
    sleep 1
done
if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || { echo "train-budget: $run: r2unet train failed (see $out)" >&2; exit 1; }
fi
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true

done_now=$(epochs_done)
t=$(epoch_seconds "$done_now")
left=$((until_s - $(date +%s)))
# 10 % margin plus the restart (data loading, autotuning again).
total=$(awk -v d="$done_now" -v t="$t" -v l="$left" 'BEGIN { n = int((l - 30) / (t * 1.1)); if (n < 0) n = 0; print d + n }')
echo "train-budget: $run: $done_now epoch(s) at ${t}s each, ${left}s left -> --epochs $total" | tee -a "$out"
if [ "$total" -le "$done_now" ]; then
    echo "train-budget: $run: no time for another epoch; the run stops at epoch $done_now of a provisional $provisional" | tee -a "$out"
    exit 0
fi
# --init only seeds a fresh run; the resumed one continues from its checkpoint (and r2unet
# refuses the two together).
resume_args=()
while [ $# -gt 0 ]; do
    case $1 in
    --init) shift 2 ;;
    --init=*) shift ;;
    *) resume_args+=("$1"); shift ;;
    esac
done
"$bin" train "${resume_args[@]}" --out "$run" --epochs "$total" --resume >>"$out" 2>&1 &
pid=$!
wait "$pid"
