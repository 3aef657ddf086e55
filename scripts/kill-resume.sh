#!/usr/bin/env bash
# Training that survives kills (issue 18): SIGKILLs `r2unet train` at random instants, and on
# purpose while it writes a checkpoint, resumes it each time, and checks that
#   - every resume starts (each run ends in our SIGKILL or succeeds, never in an error),
#   - after every kill the run folder holds one whole committed checkpoint and log.csv has
#     epochs 1..k once each (k = the committed epoch, or one fewer when the kill came between
#     the commit and log.csv's rewrite; the resume rewrites it),
#   - the final log.csv has epochs 1..EPOCHS once each,
#   - the metrics of every epoch (full precision, from state.json) equal those of an
#     uninterrupted run with the same seed: exactly with THREADS=1 (the default); with more
#     threads within 3x the spread between two uninterrupted runs, measured here too (parallel
#     reductions add in an order that depends on the threads' schedule, and training amplifies
#     the last-bit differences: see RELIABILITY.md),
#   - a full disk (small tmpfs as --out, several sizes so that ENOSPC hits different files) fails
#     with an error that names the file and says the disk is full, leaves the last committed
#     checkpoint whole and nothing temporary, and that checkpoint resumes (needs root to mount;
#     skipped otherwise, DISK=0 skips it).
#
#   nice scripts/kill-resume.sh [WORK_DIR]
#
# Environment: R2UNET (the binary; default: cargo build --release -p r2unet-cli), R2UNET_DATA
# (default ../shared/data), EPOCHS (12), PATCHES per epoch (64), WIDTHS (16,32,64,128, the
# default model: a checkpoint of 12.6 MB takes long enough to write to be hit), THREADS (1),
# MIN_KILLS (20), MAX_KILLS (60: then the run is left to finish), SEED (the draws of kill
# instants and targets; default random, printed), DISK (1). Needs python3 (it reads
# state.json). Takes about 5 minutes on 2 cores (2 of them the full-disk part).
set -euo pipefail
shopt -s nullglob dotglob

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/r2unet-kill-resume.XXXXXX)}
mkdir -p "$work"
data=${R2UNET_DATA:-$repo/../shared/data}
drive=$data/DRIVE
[ -d "$drive" ] || { echo "kill-resume: $drive not found (set R2UNET_DATA)" >&2; exit 1; }
epochs=${EPOCHS:-12}
patches=${PATCHES:-64}
widths=${WIDTHS:-16,32,64,128}
threads=${THREADS:-1}
min_kills=${MIN_KILLS:-20}
max_kills=${MAX_KILLS:-60}
seed=${SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed
export RAYON_NUM_THREADS=$threads

if [ -z "${R2UNET:-}" ]; then
    (cd "$repo" && cargo build --release -q -p r2unet-cli)
    R2UNET=${CARGO_TARGET_DIR:-$repo/target}/release/r2unet
fi
# A copy: a rebuild elsewhere must not change the binary between runs.
cp "$R2UNET" "$work/r2unet"
bin=$work/r2unet
common=(train --dataset drive --data "$drive" --backend flex --widths "$widths"
        --patches "$patches" --batch 32 --seed 7)
args=("${common[@]}" --epochs "$epochs")

echo "kill-resume: $work; DRIVE, widths $widths, $epochs epochs of $patches patches," \
     "RAYON_NUM_THREADS=$threads, kill seed $seed"

# What a run folder holds after a kill, as one line of words (python3 reads state.json):
# whether it is whole, and which traces of an interrupted commit it shows.
inspect() {
    python3 - "$1" <<'EOF'
import hashlib, json, os, re, sys
d = sys.argv[1]
names = sorted(os.listdir(d)) if os.path.isdir(d) else []
if "state.json" not in names:
    left = [n for n in names if n.startswith(".") or n.startswith("ckpt-")]
    print("nothing-committed", "uncommitted" if left else "clean"); sys.exit(0)
s = json.load(open(os.path.join(d, "state.json")))
c, e = s["checkpoint"], s["epoch"]
def sha(n):
    return hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
for f in (c["weights"], c["optim"]):
    if f["name"] not in names or os.path.getsize(os.path.join(d, f["name"])) != f["bytes"] \
            or sha(f["name"]) != f["sha256"]:
        print("BROKEN", f["name"]); sys.exit(0)
lines = open(os.path.join(d, "log.csv")).read().splitlines()[1:] if "log.csv" in names else []
got = [int(l.split(",")[0]) for l in lines]
if got != list(range(1, len(got) + 1)) or len(got) not in (e, e - 1):
    print("BAD-LOG", e, got); sys.exit(0)
words = ["epoch=%d" % e]
if any(n.startswith(".") and n.endswith(".tmp") for n in names): words.append("tmp")
nums = [int(m.group(1)) for n in names for m in [re.match(r"ckpt-(\d+)\.", n)] if m]
if any(n > e for n in nums): words.append("uncommitted")
if any(n < e for n in nums): words.append("old-not-removed")
if len(got) == e - 1: words.append("log-behind")
if s["best_epoch"] == e and c["best_sha256"] and ("best.bpk" not in names or sha("best.bpk") != c["best_sha256"]):
    words.append("best-behind")
print(" ".join(words))
EOF
}

# Epoch-by-epoch metrics of two runs (state.json, full precision): the largest relative
# difference of train_loss, val_loss, val_auc, val_f1 over all epochs; a failure when the
# epochs or learning rates differ.
compare() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
a, b = (json.load(open(p + "/state.json"))["log"] for p in sys.argv[1:3])
assert [x["epoch"] for x in a] == [x["epoch"] for x in b], "epochs differ"
assert all(float(x["lr"]) == float(y["lr"]) for x, y in zip(a, b)), "learning rates differ"
worst, where = 0.0, "-"
for x, y in zip(a, b):
    for k in ("train_loss", "val_loss", "val_auc", "val_f1"):
        u, v = float(x[k]), float(y[k])
        d = 0.0 if u == v or (u != u and v != v) else abs(u - v) / max(abs(u), abs(v), 1e-12)
        if d > worst: worst, where = d, "epoch %d %s (%.9g vs %.9g)" % (x["epoch"], k, u, v)
print("%.3g %s" % (worst, where.replace(" ", "_")))
EOF
}

final_metrics() {
    python3 -c 'import json,sys; l=json.load(open(sys.argv[1]+"/state.json"))["log"][-1]; print("train_loss %.9f val_loss %.9f val_auc %.9f val_f1 %.9f" % tuple(float(l[k]) for k in ("train_loss", "val_loss", "val_auc", "val_f1")))' "$1"
}

log_epochs() { awk -F, 'NR > 1 { printf "%s ", $1 }' "$1/log.csv"; }

alive() { local s; { read -r _ _ s _ <"/proc/$1/stat"; } 2>/dev/null && [ "$s" != Z ]; }

# 1. Two uninterrupted runs.
for r in a b; do
    rm -rf "$work/$r"
    t0=$EPOCHREALTIME
    "$bin" "${args[@]}" --out "$work/$r" >"$work/$r.err" 2>&1 || { cat "$work/$r.err"; exit 1; }
    t1=$EPOCHREALTIME
    echo "uninterrupted run $r: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; $(final_metrics "$work/$r")"
    if [ "$r" = a ]; then run_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }'); fi
done
read -r spread spread_where < <(compare "$work/a" "$work/b")
echo "spread between the two uninterrupted runs: $spread (largest at ${spread_where//_/ })"

# 2. The killed run.
k=$work/k
rm -rf "$k" "$k.attempts"
mkdir -p "$k.attempts"
kills=0 at_write=0 write_kills=0 write_seen=0 attempts=0 resumes=0 resumes_seen=0 done=0
declare -A trace=()
# A timed kill lands anywhere up to ~3 epochs after the start (loading, training, validation,
# a commit). A write kill waits for the next epoch's commit to start (its first checkpoint
# file appears, once the resume has removed any leftovers of that name), then spins (no sleep:
# the small files' windows last about a millisecond) until the temporary file it aims at
# appears (a checkpoint file's; state.json's, before the commit point; log.csv's, after it)
# and kills at once, or after 300 ms when it missed it.
epoch_ms=$((run_ms / epochs))
patterns=(".ckpt-*.bpk.tmp" ".ckpt-*.optim.tmp" ".state.json.tmp" ".log.csv.tmp")
any_exists() { local f; for f in "$@"; do [ -e "$f" ] && return 0; done; return 1; }
while [ "$done" -eq 0 ]; do
    attempts=$((attempts + 1))
    before=none
    resume=()
    if [ -f "$k/config.json" ]; then
        resume=(--resume)
        resumes=$((resumes + 1))
        before=$(inspect "$k")
    fi
    err=$k.attempts/$attempts.err
    "$bin" "${args[@]}" --out "$k" "${resume[@]}" >"$err" 2>&1 &
    pid=$!
    mode=none
    if [ "$kills" -lt "$max_kills" ]; then
        if [ $((RANDOM % 5)) -lt 2 ]; then
            delay=$((50 + RANDOM % (3 * epoch_ms)))
            mode="timer ${delay} ms"
            until_us=$((${EPOCHREALTIME/./} + delay * 1000))
            while alive "$pid" && [ "${EPOCHREALTIME/./}" -lt "$until_us" ]; do sleep 0.005; done
        else
            pattern=${patterns[RANDOM % ${#patterns[@]}]}
            mode="write $pattern"
            committed=$(echo "$before" | sed -n 's/.*epoch=\([0-9]*\).*/\1/p')
            stem=$(printf 'ckpt-%04d' $((${committed:-0} + 1)))
            leftovers=("$k/$stem".* "$k/.$stem".*)
            while alive "$pid" && any_exists "${leftovers[@]}"; do sleep 0.001; done
            while alive "$pid" && ! any_exists "$k/$stem".* "$k/.$stem".*; do sleep 0.001; done
            seen=missed
            until_us=$((${EPOCHREALTIME/./} + 300000))
            while alive "$pid"; do
                for f in "$k"/$pattern; do [ -e "$f" ] && { seen=seen; break 2; }; done
                [ "${EPOCHREALTIME/./}" -lt "$until_us" ] || break
            done
            mode="$mode ($seen)"
        fi
        kill -9 "$pid" 2>/dev/null || true
    fi
    status=0
    wait "$pid" 2>/dev/null || status=$?
    if [ "${#resume[@]}" -gt 0 ] && grep -q '^resuming' "$err"; then
        resumes_seen=$((resumes_seen + 1))
        # It resumed from the checkpoint the folder held.
        e=$(echo "$before" | sed -n 's/.*epoch=\([0-9]*\).*/\1/p')
        if [ -n "$e" ] && ! grep -q "^resuming .* after epoch $e of $epochs" "$err"; then
            echo "FAIL: attempt $attempts: the folder held epoch $e ($before) but:"; grep '^resuming' "$err"; exit 1
        fi
    fi
    case $status in
    0) done=1 ;;
    137)
        kills=$((kills + 1))
        case $mode in write*) write_kills=$((write_kills + 1)) ;; esac
        case $mode in *"(seen)") write_seen=$((write_seen + 1)) ;; esac
        after=$(inspect "$k")
        case $after in BROKEN* | BAD-LOG*)
            echo "FAIL: after kill $kills ($mode): $after"; exit 1 ;;
        esac
        case $after in
        "nothing-committed clean") marks= ;;
        "nothing-committed uncommitted") marks=uncommitted ;;
        *) marks=$(echo "$after" | tr ' ' '\n' | grep -v '^epoch=' | tr '\n' ' ' || true) ;;
        esac
        if [ -n "$marks" ]; then
            at_write=$((at_write + 1))
            for w in $marks; do trace[$w]=$((${trace[$w]:-0} + 1)); done
        fi
        echo "kill $kills (attempt $attempts, $mode): $after" ;;
    *)
        echo "FAIL: attempt $attempts (${resume[*]:-fresh start}) exited $status:"; cat "$err"; exit 1 ;;
    esac
done

epochs_k=$(log_epochs "$k")
want=$(seq -s ' ' 1 "$epochs")
[ "$epochs_k" = "$want " ] || { echo "FAIL: log.csv epochs: $epochs_k"; exit 1; }
read -r diff diff_where < <(compare "$work/a" "$k")
if [ "$threads" -eq 1 ]; then
    tol=0
else
    tol=$(awk -v s="$spread" 'BEGIN { t = 3 * s; if (t < 1e-6) t = 1e-6; print t }')
fi
ok=$(awk -v d="$diff" -v t="$tol" 'BEGIN { print (d <= t) ? "yes" : "no" }')
traces=$(for w in "${!trace[@]}"; do echo -n "$w ${trace[$w]}, "; done)

# 3. A full disk: tmpfs folders sized from the uninterrupted run's files (tmpfs counts 4 KiB
# pages) so that ENOSPC hits each file of epoch 1's and epoch 2's commits in turn: a checkpoint
# file, state.json before the commit point, log.csv and best.bpk after it.
disk_lines=()
if [ "${DISK:-1}" = 1 ]; then
    mnt=$work/disk
    mkdir -p "$mnt"
    if mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null; then
        umount "$mnt"
        mapfile -t cases < <(python3 - "$work/a" <<'EOF'
import math, os, sys
d = sys.argv[1]
pages = lambda n: math.ceil(os.path.getsize(os.path.join(d, n)) / 4096)
names = os.listdir(d)
w = pages(next(n for n in names if n.endswith(".bpk") and n.startswith("ckpt-")))
o = pages(next(n for n in names if n.endswith(".optim")))
cfg = pages("config.json")
e1 = cfg + w + o + 1 + 1 + w          # after epoch 1: config, weights, optimizer, state, log, best
for label, p in [("ckpt-0001.bpk", cfg + w // 2), ("state.json", cfg + w + o),
                 ("log.csv", cfg + w + o + 1), ("best.bpk", cfg + w + o + 2 + w // 2),
                 ("ckpt-0002.bpk", e1 + w // 2), ("ckpt-0002.optim", e1 + w + o // 2),
                 ("state.json", e1 + w + o)]:
    print(label, p * 4096)
EOF
        )
        for c in "${cases[@]}"; do
            read -r aim size <<<"$c"
            mount -t tmpfs -o "size=$size" tmpfs "$mnt"
            out=$mnt/run
            status=0
            "$bin" "${common[@]}" --epochs 2 --out "$out" >"$work/disk-$size.err" 2>&1 || status=$?
            msg=$(grep '^error:' "$work/disk-$size.err" || true)
            state=$(inspect "$out")
            rm -rf "$work/disk-$size"
            cp -r "$out" "$work/disk-$size"
            umount "$mnt"
            if [ "$status" -eq 0 ]; then
                disk_lines+=("  $size bytes (aimed at $aim): the run fitted")
                continue
            fi
            case $msg in *"$out/"*": the disk is full"*"--resume"*) ;;
                *) echo "FAIL: tmpfs of $size bytes: exit $status, message: $msg"; exit 1 ;;
            esac
            case $state in *tmp* | *uncommitted* | BROKEN* | BAD-LOG*)
                echo "FAIL: tmpfs of $size bytes: left $state"; exit 1 ;;
            esac
            "$bin" "${common[@]}" --epochs 2 --out "$work/disk-$size" --resume >"$work/disk-$size.resume.err" 2>&1 ||
                { echo "FAIL: tmpfs of $size bytes: the copy does not resume"; cat "$work/disk-$size.resume.err"; exit 1; }
            [ "$(log_epochs "$work/disk-$size")" = "1 2 " ] ||
                { echo "FAIL: tmpfs of $size bytes: log $(log_epochs "$work/disk-$size")"; exit 1; }
            file=$(echo "$msg" | sed -n 's/.*: \([^:]*\): the disk is full.*/\1/p')
            disk_lines+=("  $size bytes (aimed at $aim): exit $status, ENOSPC on ${file##*/}; folder after: $state; resumed from a copy to epoch 2")
        done
        first_msg=$(grep -h '^error:' "$work"/disk-*.err | head -1)
    else
        disk_lines+=("  SKIPPED: cannot mount a tmpfs here (run as root)")
    fi
fi

echo
echo "== kill-resume summary (kill seed $seed, RAYON_NUM_THREADS=$threads) =="
echo "kills: $kills ($write_kills aimed at a commit's temporary file, seen in $write_seen; $((kills - write_kills)) at random instants); $at_write left an interrupted commit behind (${traces%, })"
echo "attempts $attempts; resumes $resumes, all started ($resumes_seen printed their start before the kill), each from the checkpoint the folder held"
echo "log.csv epochs after the last resume: $epochs_k"
echo "uninterrupted:  $(final_metrics "$work/a")"
echo "killed+resumed: $(final_metrics "$k")"
echo "largest relative difference over all epochs' metrics: $diff (${diff_where//_/ }); tolerance $tol; between two uninterrupted runs: $spread"
if [ ${#disk_lines[@]} -gt 0 ]; then
    echo "full disk (tmpfs as --out, 2 epochs):"
    printf '%s\n' "${disk_lines[@]}"
    if [ -n "${first_msg:-}" ]; then echo "  e.g. $first_msg"; fi
fi
fail=0
[ "$kills" -ge "$min_kills" ] || { echo "FAIL: only $kills kills (want $min_kills; raise EPOCHS)"; fail=1; }
[ "$ok" = yes ] || { echo "FAIL: the metrics differ by more than the tolerance"; fail=1; }
[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
