#!/usr/bin/env bash
# mpi_ckpt_lazy: an MPI job whose ranks' heaps come in behind them at the
# restart (core/lazy_restore.h): mpi_heap (48 MiB a rank, a 4 MiB ring
# receive into the middle of the heap pending across the sleep, strides of
# the heap rewritten every iteration, the last line checksums every rank's
# whole heap) checkpointed mid-run, killed, restarted with
# CKPTMPI_RESTART=latest: every rank must say its program ran with memory
# still coming in, and the output merged with the killed run's must equal
# a plain run's. FLAVOUR=mpich (default, 4 ranks) or openmpi (4 ranks).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) trigger=mpirun ;;
	openmpi) trigger=command ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
export CKPTMPI_VERBOSE=1
mpi_ckpt_case --trigger "${TRIGGER:-$trigger}" "$FL" "${NP:-4}" mpi_heap 16 150 48
n=$(grep -Ec "restart: the program runs; [0-9]+ MiB come in behind it" "$WORK/restart.out.err" || true)
[ "$n" -eq "${NP:-4}" ] ||
    fail "$n of ${NP:-4} ranks ran before their memory was in: $(snip "$WORK/restart.out.err" 800)"
n=$(grep -Ec "restart: [0-9]+ MiB read and checked behind the program" "$WORK/restart.out.err" || true)
[ "$n" -eq "${NP:-4}" ] || fail "$n of ${NP:-4} ranks said their memory was all read and checked"
log "$(grep -E "come in behind|read and checked behind" "$WORK/restart.out.err" | head -n 2 | tr '\n' ' ')"
