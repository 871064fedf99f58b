#!/usr/bin/env bash
# test_train_dist.sh TRAIN EVAL mpi|none: genvae-train on 2 processes over MPI, on loopback.
#  (a) exact resume at a fixed world size: 2 epochs in one run end with the same checkpoint, bit
#      for bit, as 1 epoch then --resume, and as a run stopped mid-epoch (checkpoint at step 7, a
#      NaN at step 9) then --resume; the checkpoint holds both ranks' streams;
#  (b) a resume on another number of processes is refused, naming both counts; --reseed allows it;
#  (c) ranks given different flags are refused, naming the flag, and so is --dist single under mpirun;
#  (d) a rank killed mid-run makes mpirun and every rank exit non-zero within a bounded time, and
#      the last checkpoint stays whole (it loads and resumes);
#  (e) a rank that stops answering: the others give up after --dist-timeout, naming the rank.
# SKIP without MPI or MNIST.
set -uo pipefail
train=$1 eval=$2 mpi=$3
if [ "$mpi" != mpi ]; then echo "SKIP: this build has no MPI (meson -Dmpi)"; exit 77; fi
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt-get install openmpi-bin)"; exit 77; }
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/../mpi_env.sh"
need_mnist
dist=("${tiny[@]}" --threads 1)
mp() { mpirun_local 2 "$train" "$@"; }

# (a)
run_expect 0 mp "${dist[@]}" --epochs 2 --out "$scratch/full"
grep -q "2 processes (mpi), 25 examples each per batch of 50" "$scratch/out.log" || { echo "FAIL: not 2 processes"; exit 1; }
[ "$($check meta "$scratch/full/checkpoint.safetensors" extra.world-size)" = 2 ] || { echo "FAIL: world-size not saved"; exit 1; }
$check meta "$scratch/full/checkpoint.safetensors" rng.train.rank1 >/dev/null || { echo "FAIL: rank 1's stream not saved"; exit 1; }
run_expect 0 mp "${dist[@]}" --epochs 1 --out "$scratch/a"
run_expect 0 mp --resume "$scratch/a" --epochs 2
grep -q "resuming .* at step 10 (epoch 2, batch 0)" "$scratch/out.log" || { echo "FAIL: did not resume at step 10"; exit 1; }
$check same "$scratch/full/checkpoint.safetensors" "$scratch/a/checkpoint.safetensors" || exit 1
run_expect 3 mp "${dist[@]}" --epochs 2 --checkpoint-every 7 --debug-nan-at-step 9 --out "$scratch/b"
run_expect 0 mp --resume "$scratch/b" --debug-nan-at-step 0
grep -q "resuming .* at step 7 (epoch 1, batch 7)" "$scratch/out.log" || { echo "FAIL: did not resume at step 7"; exit 1; }
$check same "$scratch/full/checkpoint.safetensors" "$scratch/b/checkpoint.safetensors" || exit 1
$check files "$scratch/b" 2 || exit 1
# the 2-process run is not the 1-process run (each rank draws its own z): the comparison can fail
run_expect 0 "$train" "${dist[@]}" --epochs 2 --out "$scratch/single"
$check differ "$scratch/full/checkpoint.safetensors" "$scratch/single/checkpoint.safetensors" || exit 1

# (b)
run_expect 1 "$train" --resume "$scratch/a" --epochs 3
grep -q "saved by 2 process(es) and is resumed by 1" "$scratch/out.log" || { echo "FAIL: world size change not refused"; exit 1; }
run_expect 0 "$train" --resume "$scratch/a" --epochs 3 --reseed

# (c) rank 1 given another learning rate
run_expect 1 mpirun_local 1 "$train" "${dist[@]}" --epochs 1 --lr 0.001 --out "$scratch/c" : \
  -np 1 "$train" "${dist[@]}" --epochs 1 --lr 0.002 --out "$scratch/c"
grep -q -- "rank 1: --lr is 0.002 there but 0.001 on rank 0" "$scratch/out.log" || { echo "FAIL: the mismatch is not named"; exit 1; }
[ ! -e "$scratch/c" ] || { echo "FAIL: a refused run left a folder"; exit 1; }
# --dist single under mpirun: each process would write the same folder
run_expect 1 mp "${dist[@]}" --epochs 1 --dist single --out "$scratch/c"
grep -q "the launcher started 2 processes, and each would run alone" "$scratch/out.log" || { echo "FAIL: --dist single not refused"; exit 1; }

# (d) kill rank 1 after the first checkpoint
mp "${dist[@]}" --epochs 1000 --checkpoint-every 5 --out "$scratch/d" >"$scratch/d.log" 2>&1 &
launcher=$!
for _ in $(seq 600); do [ -e "$scratch/d/checkpoint.safetensors" ] && break; sleep 0.1; done
[ -e "$scratch/d/checkpoint.safetensors" ] || { echo "FAIL: no checkpoint after 60 s"; cat "$scratch/d.log"; kill $launcher; exit 1; }
victim=""
for p in $(pgrep -f "genvae-train .*$scratch/d"); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then victim=$p; fi
done
[ -n "$victim" ] || { echo "FAIL: rank 1 not found"; kill $launcher; exit 1; }
start=$(date +%s)
kill -9 "$victim"
timeout 60 tail --pid=$launcher -f /dev/null || { echo "FAIL: mpirun still running 60 s after rank 1 was killed"; kill -9 $launcher; exit 1; }
wait $launcher; rc=$?
took=$(( $(date +%s) - start ))
cat "$scratch/d.log" | tail -20
[ "$rc" != 0 ] || { echo "FAIL: mpirun exited 0 after a rank was killed"; exit 1; }
[ "$took" -lt 60 ] || { echo "FAIL: the run took ${took}s to stop"; exit 1; }
grep -qiE "rank 1|process rank 1" "$scratch/d.log" || { echo "FAIL: the lost rank is not named"; exit 1; }
if pgrep -f "genvae-train .*$scratch/d" >/dev/null; then echo "FAIL: a rank is still running"; exit 1; fi
if ls -A "$scratch/d" | grep -q '\.tmp\.'; then echo "FAIL: a temporary checkpoint file was left"; exit 1; fi
$check finite "$scratch/d/checkpoint.safetensors" || exit 1
run_expect 0 "$eval" "$scratch/d" --iwae-k 2 --iwae-examples 20 --mi-examples 20 --test-limit 50 --threads 1
echo "ok: killed rank 1: mpirun exited $rc after ${took}s; the checkpoint loads"

# (e) rank 1 stops answering at step 5; rank 0 gives up after 10 s (room for a slow start under
# the sanitizers: the deadline covers the start-up's collectives too)
start=$(date +%s)
run_expect 1 timeout 120 mpirun -np 2 --oversubscribe --bind-to none "$train" "${dist[@]}" --epochs 1 --debug-stall-at-step 5 --dist-timeout 10 --out "$scratch/e"
took=$(( $(date +%s) - start ))
grep -q "rank 0 of 2 (mpi): the all-reduce of .* did not complete within 10 s" "$scratch/out.log" || { echo "FAIL: no timeout message"; exit 1; }
[ "$took" -lt 60 ] || { echo "FAIL: the stalled run took ${took}s to stop"; exit 1; }
echo "ok"
