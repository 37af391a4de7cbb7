#!/usr/bin/env bash
# mpi_ckpt_chain: checkpoint, kill, restart, checkpoint (of the restarted
# job, into the same directory: a newer generation), kill, restart to the
# end; the three outputs merged = plain run.  mpich (default): mpi_p2p on 3
# ranks; openmpi: mpi_comms on 4 ranks, ckptmpi checkpoint DIR.
# Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON.  NP=, TRIGGER= (mpirun,
# rank, command) override the choices below; see "MPI jobs" in lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=3 trigger=mpirun prog=mpi_p2p ;;
	openmpi) np=4 trigger=command prog=mpi_comms ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
mpi_chain_case --trigger "${TRIGGER:-$trigger}" "$FL" "${NP:-$np}" "$prog" 25 100
# the restarted job's generation stores only the pages written since the
# one it restarted from (CKPTMPI_FULL_EVERY, default 8): every rank's
# slice, and the restart above read through that chain
ck ls "$WORK/ck" --json
[ "$RC" -eq 0 ] || fail "ckptmpi ls --json exited $RC: $(snip "$WORK/ck.err" 400)"
python3 - "$WORK/ck.out" <<'PY' || fail "ls --json: $(snip "$WORK/ck.out" 1500)"
import json, sys
g = sorted(json.load(open(sys.argv[1])), key=lambda x: x["generation"])
if len(g) < 2 or g[-1]["pages_parent"] != g[-2]["generation"] or g[-2]["pages_parent"] != 0:
    sys.exit("expected the newest generation incremental over the one before, a full one")
for a, b in zip(g[-1]["processes"], g[-2]["processes"]):
    print(f"rank {a['rank']}: {a['memory_saved']} bytes of pages, {b['memory_saved']} in the full one")
PY
log "generation pages_parent: $(python3 -c 'import json,sys; print(" ".join("%d<-%d" % (x["generation"], x["pages_parent"]) for x in json.load(open(sys.argv[1]))))' "$WORK/ck.out")"
