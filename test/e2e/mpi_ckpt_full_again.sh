#!/usr/bin/env bash
# mpi_ckpt_full_again: the full generations that come after the first
# (CKPTMPI_FULL_EVERY=2: full, incremental, full, incremental, full) store
# what the first stored, and no more: the pages write tracking marked
# unpopulated (the MPI layer's 640 MiB reserved tables, a library's code)
# are not saved, nor read (docs/container.md, "Incremental generations").
# MPICH, mpi_p2p on 2 ranks: five checkpoints, kill, restart from the
# fifth (full), outputs merged = plain run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
_mpi_options --runtime --trigger mpirun
mpi_setup mpich
MPI_NP=2
_mpi_program mpi_p2p 60 100
_mpi_reference
mkdirs "$WORK/run" "$WORK/ck"
mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_FULL_EVERY=2 \
	CKPTMPI_KEEP=10 -- "${MPI_CKPTCMD[@]}"
mpi_wait_step "$WORK/run1.out" 2
for i in 1 2 3 4; do
	mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"
	mpi_wait_step "$WORK/run1.out" $(($(last_step_of "$WORK/run1.out") + 1))
done
_mpi_ckpt_and_kill "$WORK/run1.out"
lo=$REQ_STEP hi=$CKPT_AFTER
mpi_check_generation "$WORK/ck" "$GEN" "$MPI_NP"
ck ls "$WORK/ck" --json
[ "$RC" -eq 0 ] || fail "ckptmpi ls --json exited $RC: $(snip "$WORK/ck.err" 400)"
python3 - "$WORK/ck.out" <<'PY' || fail "ls --json: $(snip "$WORK/ck.out" 3000)"
import json, sys
g = sorted(json.load(open(sys.argv[1])), key=lambda x: x["generation"])
if len(g) != 5:
    sys.exit(f"expected 5 generations, found {len(g)}")
full = [x for x in g if x["pages_parent"] == 0]
if [x["generation"] for x in full] != [g[0]["generation"], g[2]["generation"], g[4]["generation"]]:
    sys.exit("expected generations 1, 3 and 5 full, 2 and 4 incremental")
for r, first in enumerate(full[0]["processes"]):
    for later in full[1:]:
        a, b = first["memory_saved"], later["processes"][r]["memory_saved"]
        print(f"rank {r}: generation {later['generation']} (full) stores {b >> 10} KiB, "
              f"the first {a >> 10} KiB")
        # the program's own writes since may add a little, not tens of MiB
        if b > a + a // 2 + (4 << 20):
            sys.exit(f"rank {r}: full generation {later['generation']} stores {b} bytes, "
                     f"the first full one {a}: unpopulated pages were saved")
PY
log "$(cat "$WORK/ck.out" | python3 -c 'import json,sys; print("; ".join("gen %d <- %d: %s" % (x["generation"], x["pages_parent"], ",".join(str(p["memory_saved"] >> 10) + " KiB" for p in x["processes"])) for x in json.load(sys.stdin)))')"
mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
_mpi_check_resume "$WORK/restart.out" "$lo" "$hi"
merge_steps "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run + restart from the fifth generation)" "the plain run"
