#!/usr/bin/env bash
# check_coverage.sh -- is pmpi/mpi_functions.def complete, and does what
# gen_mpi.py generates from it compile against the real MPI libraries?
#
#   pmpi/gen/check_coverage.sh [--no-compile] [--no-run] [--write-predefined] [FLAVOUR...]
#
# For each flavour (default: openmpi mpich):
#  1. coverage: the C functions (MPI_* and PMPI_* text symbols) the library
#     exports against the table, both ways. Functions newer than MPI-3.1 are
#     listed apart ("not in table: newer than MPI-3.1"); anything else the
#     library exports and the table lacks is an error. Also listed: what the
#     table has but the flavour does not generate (macros, hidden removed
#     functions), and the other functions and the data objects the
#     flavour's mpi.h declares and the library exports -- the shim must
#     provide those too (--write-predefined writes the objects with their
#     sizes to pmpi/gen/<flavour>_predefined.txt).
#  2. compile (unless --no-compile): generate into a temporary directory;
#     compile upper_wrappers.c with the flavour's mpi.h and stub_call.h
#     (gcc -std=gnu11 -Wall -Wextra -Werror; with the stub's macros dropping
#     their extra arguments and again evaluating them) into a shared object and check
#     it exports MPI_x and PMPI_x for every generated function; compile
#     lower_table.c the same way, link it with the real library into a small
#     program and run it: every entry of the table must be set.
#  3. run (unless --no-run or --no-compile): a small MPI program (singleton:
#     Init, Allreduce, Alltoallw, struct type and Type_get_contents,
#     Isend/Irecv/Waitall, Wtime, Pcontrol, Finalize) calls the generated
#     wrappers, which reach the real library through the table (identity
#     handles, so this proves the forwarding, not the handle translation).
#
# Environment: CC (default gcc), OPENMPI_LIB, MPICH_LIB (library paths),
# OPENMPI_CFLAGS/OPENMPI_LIBS, MPICH_CFLAGS/MPICH_LIBS (default pkg-config).
# Exit status: 0 when nothing is missing and everything compiled and ran.

set -u
here=$(cd "$(dirname "$0")" && pwd)
pmpi=$(dirname "$here")
gen=(python3 "$pmpi/gen_mpi.py")
CC=${CC:-gcc}
CFLAGS_CHECK=(-std=gnu11 -Wall -Wextra -Werror -O1)
libdir=/usr/lib/x86_64-linux-gnu

do_compile=1 do_run=1 write_pre=0
flavours=()
for a in "$@"; do
	case $a in
	--no-compile) do_compile=0 ;;
	--no-run) do_run=0 ;;
	--write-predefined) write_pre=1 ;;
	openmpi|mpich) flavours+=("$a") ;;
	-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "check_coverage.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done
[ ${#flavours[@]} -gt 0 ] || flavours=(openmpi mpich)

lib_of() { case $1 in openmpi) echo "${OPENMPI_LIB:-$libdir/libmpi.so.40}" ;;
                      mpich) echo "${MPICH_LIB:-$libdir/libmpich.so.12}" ;; esac; }
pkg_of() { case $1 in openmpi) echo ompi-c ;; mpich) echo mpich ;; esac; }
cflags_of() {
	local v; v=${1^^}_CFLAGS
	if [ -n "${!v:-}" ]; then echo "${!v}"; else pkg-config --cflags "$(pkg_of "$1")"; fi
}
libs_of() {
	local v; v=${1^^}_LIBS
	if [ -n "${!v:-}" ]; then echo "${!v}"; else pkg-config --libs "$(pkg_of "$1")"; fi
}

# Functions MPI-4.0 (or later) added: large-count _c variants, persistent
# collectives, partitioned communication, sessions, MPI_T events and sources,
# and the rest of the MPI-4.0 additions.
newer_re='^MPIX_|(_c$)|^MPI_(I?(Allgather|Allgatherv|Allreduce|Alltoall|Alltoallv|Alltoallw|Barrier|Bcast|Exscan|Gather|Gatherv|Reduce|Reduce_scatter|Reduce_scatter_block|Scan|Scatter|Scatterv)|Neighbor_(allgather|allgatherv|alltoall|alltoallv|alltoallw))_init$|^MPI_(Psend_init|Precv_init|Pready|Pready_range|Pready_list|Parrived)$|^MPI_Session_|^MPI_(Group_from_session_pset|Comm_create_from_group|Intercomm_create_from_groups|Isendrecv|Isendrecv_replace|Comm_idup_with_info|Info_create_env|Info_get_string)$|^MPI_T_(event_|source_)|^MPI_T_category_get_(events|num_events)$|^MPI_Status_(c2f08|f082c|f2f08|f082f)$'

tmp=$(mktemp -d /tmp/ckpt-coverage.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
status=0

hex2dec() {   # "name hexsize" lines -> "name decimalsize"
	local name hex
	while read -r name hex; do printf '%s %d\n' "$name" "$((16#$hex))"; done
}

show() {   # show TITLE FILE: "TITLE: none" or "TITLE (n):" and the names, wrapped
	local n; n=$(grep -c . "$2")
	if [ "$n" -eq 0 ]; then
		echo "  $1: none"
	else
		echo "  $1 ($n):"
		fmt -w 96 "$2" | sed 's/^/      /'
	fi
}

"${gen[@]}" --check >/dev/null || exit 1
"${gen[@]}" --list | sort > "$tmp/table"
echo "table: $(wc -l < "$tmp/table") functions in $pmpi/mpi_functions.def"

for f in "${flavours[@]}"; do
	lib=$(lib_of "$f")
	d=$tmp/$f
	mkdir -p "$d"
	echo
	echo "== $f: $lib"
	if [ ! -e "$lib" ]; then
		echo "  library not found"; status=1; continue
	fi
	cf=$(cflags_of "$f")

	# --- 1. coverage -----------------------------------------------------
	nm -D --defined-only "$lib" | awk '$2 ~ /^[TWi]$/ { sub(/@.*/, "", $3); print $3 }' \
		| sort -u > "$d/text"
	grep -E '^P?MPIX?_[A-Z][a-z0-9_]*$' "$d/text" | sed 's/^P//' | sort -u > "$d/exported"
	grep -E '^MPIX?_[A-Z][a-z0-9_]*$' "$d/text" | sort -u > "$d/mpi_only"
	grep -E '^PMPIX?_[A-Z][a-z0-9_]*$' "$d/text" | sed 's/^P//' | sort -u > "$d/pmpi_only"
	nupper=$(grep -cE '^P?MPI_[A-Z0-9_]*[A-Z][A-Z0-9_]*$' "$d/text")
	"${gen[@]}" --list --flavour "$f" --mpi-cflags "$cf" | sort > "$d/generated"
	"${gen[@]}" --scan --flavour "$f" --mpi-cflags "$cf" > "$d/scan"
	awk '$1 == "function" { print $2 }' "$d/scan" | sort -u > "$d/decl_funcs"
	awk '$1 == "object" { print $2 }' "$d/scan" | sort -u > "$d/decl_objs"

	echo "  library exports $(wc -l < "$d/exported") MPI C functions" \
	     "($nupper upper-case Fortran symbols ignored); $(wc -l < "$d/generated") generated for $f"
	comm -23 "$d/exported" "$tmp/table" > "$d/lib_not_table"
	grep -Ev "$newer_re" "$d/lib_not_table" > "$d/missing"
	grep -E "$newer_re" "$d/lib_not_table" > "$d/newer"
	show "MISSING: exported by the library, not in the table" "$d/missing"
	[ -s "$d/missing" ] && status=1
	show "not in table: newer than MPI-3.1, or MPIX_ (refused at the call: upper_unsupported.c)" "$d/newer"

	comm -13 "$d/exported" "$tmp/table" > "$d/table_not_lib"
	comm -12 "$d/table_not_lib" "$d/decl_funcs" > "$d/decl_not_lib"
	comm -23 "$d/table_not_lib" "$d/decl_funcs" > "$d/macro"
	show "in the table, not exported; mpi.h has no such function (a macro): not generated" "$d/macro"
	show "ERROR: in the table and declared by mpi.h, but not exported" "$d/decl_not_lib"
	[ -s "$d/decl_not_lib" ] && status=1
	comm -12 "$tmp/table" "$d/exported" | comm -23 - "$d/generated" > "$d/hidden"
	show "in the table and exported, but mpi.h does not declare them: not generated" "$d/hidden"
	comm -3 "$d/mpi_only" "$d/pmpi_only" | tr -d '\t' > "$d/unpaired"
	show "exported as only one of MPI_x and PMPI_x" "$d/unpaired"

	# other functions and objects of mpi.h the library exports (the shim must export them)
	grep -Ev '^P?MPI_' "$d/decl_funcs" | grep -Ev '^(QMPI|QMPIX|PMPIX)_' \
		| comm -12 - "$d/text" > "$d/other_funcs"
	show "other functions mpi.h declares and the library exports (not MPI_x; the shim must export those applications use)" \
		"$d/other_funcs"
	nm -D -S --defined-only "$lib" | awk 'NF == 4 && $3 ~ /^[BDbdGgRrVv]$/ { print $4, $2 }' \
		| sort -u > "$d/data"
	awk 'NR == FNR { want[$1]; next } ($1 in want)' "$d/decl_objs" "$d/data" \
		| hex2dec > "$d/objects"
	awk '{ print $1 "(" $2 ")" }' "$d/objects" > "$d/objects_shown"
	show "data objects mpi.h declares and the library exports (shim must define, same size)" \
		"$d/objects_shown"

	if [ "$write_pre" = 1 ]; then
		out=$here/${f}_predefined.txt
		{
			echo "# Data objects of $(basename "$(readlink -f "$lib")") that the shim must define with"
			echo "# the same names and sizes (applications built against $f's mpi.h"
			echo "# refer to them, often by copy relocation). Written by"
			echo "# pmpi/gen/check_coverage.sh --write-predefined. Format: name size (bytes,"
			echo "# decimal); '#' lines are comments."
			echo "#"
			echo "# Declared by mpi.h (what a C application can reference):"
			cat "$d/objects"
			if [ "$f" = openmpi ]; then
				echo "#"
				echo "# Other data objects the library exports as ompi_mpi_* (Fortran *_addr"
				echo "# handles, library state; not reachable through mpi.h):"
				nm -D -S --defined-only "$lib" | grep ' [BDbdGgRr] ompi_mpi_' \
					| awk '{ print $4, $2 }' | hex2dec \
					| awk 'NR == FNR { seen[$1]; next } !($1 in seen)' "$d/objects" - \
					| sort
			fi
		} > "$out"
		echo "  wrote $out"
	fi

	# --- 2. compile --------------------------------------------------------
	[ "$do_compile" = 1 ] || continue
	mkdir -p "$d/inc/pmpi" "$d/out"
	cp "$here/stub_call.h" "$d/inc/pmpi/call.h"
	if ! "${gen[@]}" -q --flavour "$f" --mpi-cflags "$cf" --out "$d/out"; then
		echo "  generation FAILED"; status=1; continue
	fi
	cat > "$d/lower_fn.c" <<-'EOF'
	#include "mpi_index.h"
	void *ckpt_lower_fn[CKPT_MPI_NFUNCS];
	EOF
	# shellcheck disable=SC2086
	if $CC "${CFLAGS_CHECK[@]}" -fPIC -shared $cf -I"$d/inc" -I"$d/out" \
		"$d/out/upper_wrappers.c" "$d/out/mpi_names.c" "$d/lower_fn.c" \
		-o "$d/libupper.so" 2> "$d/upper.err" &&
	   $CC "${CFLAGS_CHECK[@]}" -DCKPT_STUB_USE_ARGS -fPIC -c $cf -I"$d/inc" -I"$d/out" \
		"$d/out/upper_wrappers.c" -o "$d/upper_args.o" 2>> "$d/upper.err"; then
		nm -D --defined-only "$d/libupper.so" | awk '$2 ~ /^[TW]$/ { print $3 }' \
			| grep -E '^P?MPI_' | sort > "$d/upper_syms"
		{ sed 's/^/P/' "$d/generated"; cat "$d/generated"; } | sort > "$d/want_syms"
		if cmp -s "$d/upper_syms" "$d/want_syms"; then
			echo "  upper_wrappers.c: compiles with -Werror; exports MPI_x and PMPI_x for all" \
			     "$(wc -l < "$d/generated") functions"
		else
			echo "  upper_wrappers.c: exported symbols differ from the generated list:"
			diff "$d/want_syms" "$d/upper_syms" | sed 's/^/      /' | head -20
			status=1
		fi
	else
		echo "  upper_wrappers.c: compile FAILED"; sed 's/^/      /' "$d/upper.err" | head -40
		status=1; continue
	fi
	cat > "$d/lower_main.c" <<-'EOF'
	#include <stdio.h>
	#include "mpi_index.h"
	static void *fn[CKPT_MPI_NFUNCS];
	int main(void)
	{
		int i, n = 0;

		ckpt_mpi_table_fill(fn);
		for (i = 0; i < CKPT_MPI_NFUNCS; i++) {
			if (fn[i])
				n++;
			else
				printf("      NULL entry: %s\n", ckpt_mpi_names[i]);
		}
		printf("  lower_table.c: compiles with -Werror, links with the library;"
		       " %d of %d entries set\n", n, CKPT_MPI_NFUNCS);
		return n != CKPT_MPI_NFUNCS;
	}
	EOF
	# shellcheck disable=SC2086,SC2046
	if $CC "${CFLAGS_CHECK[@]}" $cf -I"$d/out" "$d/out/lower_table.c" "$d/out/mpi_names.c" \
		"$d/lower_main.c" $(libs_of "$f") -o "$d/lower" 2> "$d/lower.err"; then
		"$d/lower" || status=1
	else
		echo "  lower_table.c: compile/link FAILED"; sed 's/^/      /' "$d/lower.err" | head -40
		status=1; continue
	fi

	# --- 3. run --------------------------------------------------------------
	[ "$do_run" = 1 ] || continue
	cat > "$d/lower_dl.c" <<-'EOF'
	/* fill ckpt_lower_fn[] from the real library, as the runtime would */
	#include <dlfcn.h>
	#include <stdio.h>
	#include <stdlib.h>
	#include "mpi_index.h"
	void *ckpt_lower_fn[CKPT_MPI_NFUNCS];
	__attribute__((constructor)) static void fill(void)
	{
		const char *lib = getenv("CKPT_CHECK_MPI_LIB");
		void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
		char name[128];
		int i;

		if (!h) {
			fprintf(stderr, "dlopen %s: %s\n", lib, dlerror());
			exit(2);
		}
		for (i = 0; i < CKPT_MPI_NFUNCS; i++) {
			snprintf(name, sizeof name, "P%s", ckpt_mpi_names[i]);
			if (!(ckpt_lower_fn[i] = dlsym(h, name))) {
				fprintf(stderr, "no %s in %s\n", name, lib);
				exit(2);
			}
		}
	}
	EOF
	cat > "$d/app.c" <<-'EOF'
	#include <mpi.h>
	#include <stdio.h>
	int main(int argc, char **argv)
	{
		int rank, size, one = 1, sum = 0, bad = 0;
		int sc[1] = {1}, sd[1] = {0}, rc[1] = {1}, rd[1] = {0}, s = 7, r = 0;
		MPI_Datatype st[1] = {MPI_INT}, rt[1] = {MPI_INT};
		int bl[2] = {1, 1}, ints[3];
		MPI_Aint dp[2] = {0, 8}, ad[2];
		MPI_Datatype ty[2] = {MPI_INT, MPI_DOUBLE}, t, got[2] = {MPI_DATATYPE_NULL, MPI_DATATYPE_NULL};
		MPI_Request rq[2];
		MPI_Status sts[2];
		int a = 5, b = 0;
		double t0;

		MPI_Init(&argc, &argv);
		MPI_Comm_rank(MPI_COMM_WORLD, &rank);
		MPI_Comm_size(MPI_COMM_WORLD, &size);
		MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
		bad |= sum != size;
		MPI_Alltoallw(&s, sc, sd, st, &r, rc, rd, rt, MPI_COMM_WORLD);    /* comm_size() */
		bad |= (r != 7) << 1;
		MPI_Type_create_struct(2, bl, dp, ty, &t);
		MPI_Type_commit(&t);
		MPI_Type_get_contents(t, 3, 2, 2, ints, ad, got);                 /* envelope_ndatatypes() */
		bad |= (got[0] != MPI_INT || got[1] != MPI_DOUBLE) << 2;
		MPI_Type_free(&t);
		bad |= (t != MPI_DATATYPE_NULL) << 3;
		MPI_Irecv(&b, 1, MPI_INT, 0, 3, MPI_COMM_WORLD, &rq[0]);
		MPI_Isend(&a, 1, MPI_INT, 0, 3, MPI_COMM_WORLD, &rq[1]);
		MPI_Waitall(2, rq, sts);
		bad |= (b != 5 || rq[0] != MPI_REQUEST_NULL || sts[0].MPI_TAG != 3) << 4;
		t0 = MPI_Wtime();
		bad |= (t0 < 0 || MPI_Wtick() <= 0) << 5;
		MPI_Pcontrol(1);
		MPI_Finalize();
		printf("  run: Init, Allreduce, Alltoallw, Type_create_struct/get_contents/free,"
		       " Isend/Irecv/Waitall, Wtime, Pcontrol, Finalize through the wrappers: %s\n",
		       bad ? "FAILED" : "ok");
		if (bad)
			printf("      failure bits 0x%x\n", bad);
		return bad != 0;
	}
	EOF
	# Open MPI: the application also links libmpi for the predefined objects
	# (the shim does not define them yet); its MPI calls still resolve to the
	# wrappers, which come first.
	extra=""
	[ "$f" = openmpi ] && extra=$(libs_of "$f")
	# shellcheck disable=SC2086
	if $CC "${CFLAGS_CHECK[@]}" -fPIC -shared $cf -I"$d/inc" -I"$d/out" \
		"$d/out/upper_wrappers.c" "$d/out/mpi_names.c" "$d/lower_dl.c" -ldl \
		-o "$d/libckptshim.so" 2> "$d/run.err" &&
	   $CC -std=gnu11 -w $cf "$d/app.c" -L"$d" -lckptshim $extra -Wl,-rpath,"$d" \
		-o "$d/app" 2>> "$d/run.err"; then
		if ! CKPT_CHECK_MPI_LIB=$(basename "$lib") OMPI_ALLOW_RUN_AS_ROOT=1 \
			OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 "$d/app" 2> "$d/app.err"; then
			echo "  run: FAILED"; sed 's/^/      /' "$d/app.err" | head -20
			status=1
		fi
	else
		echo "  run: build FAILED"; sed 's/^/      /' "$d/run.err" | head -20
		status=1
	fi
done

echo
if [ "$status" = 0 ]; then echo "check_coverage: ok"; else echo "check_coverage: FAILED"; fi
exit $status
