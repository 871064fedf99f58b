# mpi_env.sh: sourced by the tests that start ranks with mpirun on this one machine.
# mpirun_local N PROGRAM ARGS...: N ranks on loopback. --oversubscribe: CI has 2 cores and a test
# may start more ranks than that; --bind-to none: each rank's OpenMP threads may use any core;
# root is allowed (CI runs as root) and the shared-memory transport copies through its buffers
# (single_copy none: containers often forbid the cross-process reads of CMA).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1
# Under the sanitizers: Open MPI's plugins stay loaded at exit (so LeakSanitizer can name them) and
# its own never-freed allocations are suppressed (tests/lsan-mpi.supp)
export OMPI_MCA_mca_base_component_disable_dlclose=1
# (the slow unwinder: Open MPI's libraries have no frame pointers for the fast one to follow)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan-mpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
mpirun_local() {
  local n=$1; shift
  mpirun -np "$n" --oversubscribe --bind-to none "$@"
}
