# common.sh: sourced by the genvae-train/genvae-eval tests. Finds MNIST (SKIP, exit 77, without
# it), makes a scratch folder removed on exit, and defines the tiny training flags the tests share
# (500 digits, batches of 50: 10 steps per epoch; a 32-unit MLP with 4 latents), small enough for
# the debug ASan build. OMP_WAIT_POLICY=passive keeps idle OpenMP threads from spinning on a busy
# machine (tests run while other work does).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
check="python3 $here/check_run.py"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mnist=${GENVAE_MNIST_DIR:-$here/../../../shared/data/mnist}
need_mnist() {
  if [ ! -e "$mnist/t10k-labels-idx1-ubyte.gz" ] && [ ! -e "$mnist/t10k-labels-idx1-ubyte" ]; then
    echo "SKIP: no MNIST files in $mnist (set GENVAE_MNIST_DIR)"
    exit 77
  fi
}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tiny=(--data mnist --data-dir "$mnist" --limit 500 --test-limit 100 --batch 50 --hidden 32 --latent 4
      --log-every 3 --threads 2 --seed 5)
# run_expect CODE CMD...: runs CMD, prints its output, fails unless it exits with CODE
run_expect() {
  local want=$1; shift
  "$@" >"$scratch/out.log" 2>&1
  local rc=$?
  cat "$scratch/out.log"
  if [ "$rc" != "$want" ]; then echo "FAIL: exit status $rc, expected $want: $*"; exit 1; fi
}
