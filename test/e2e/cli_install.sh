#!/usr/bin/env bash
# cli_install: ckptmpi as a user gets it, `cmake --install` into a fresh
# prefix, then used from there only. The pkg-config files and the CMake
# package (find_package(ckptmpi)) name the prefix itself (no
# lib/pkgconfig/../.. in flags or RUNPATHs); the manual page reads with
# man(1); a user's MPI program built both ways is checkpointed with the
# installed `ckptmpi checkpoint`, killed and restarted (the installed
# shim finds the installed runtime), ending as a plain run does.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
mpi_setup mpich
command -v mpicc.mpich >/dev/null || skip "mpicc.mpich not installed"
P=$WORK/inst
log "cmake --install $BUILD --prefix $P"
cmake --install "$BUILD" --prefix "$P" >"$WORK/install.log" 2>&1 ||
    fail "cmake --install failed: $(tail -n 5 "$WORK/install.log")"
chmod -R a+rX "$P"
CKPTMPI=$P/bin/ckptmpi   # the library's ck/mpi_request_ckpt use it from here on

# pkg-config: flags that name the prefix as it is
for pc in ckptmpi ckptmpi-mpich ckptmpi-openmpi; do
    [ -f "$P/lib/pkgconfig/$pc.pc" ] || continue
    flags=$(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --cflags --libs "$pc") ||
        fail "pkg-config $pc failed"
    [[ $flags == *"-L$P/lib"* ]] || fail "pkg-config --libs $pc does not name $P/lib: $flags"
    [[ $flags != *"/.."* && $flags != *"//"* ]] || fail "pkg-config $pc gives an unclean path: $flags"
done
log "pkg-config flags name $P/lib, without .. or //"

# a man page that man(1) renders, environment variables included
MANWIDTH=100 man -P cat -M "$P/share/man" ckptmpi >"$WORK/man.txt" 2>"$WORK/man.err" ||
    fail "man ckptmpi from $P/share/man failed: $(snip "$WORK/man.err")"
grep -q "CKPTMPI_DIR" "$WORK/man.txt" && grep -q "EXIT STATUS" "$WORK/man.txt" ||
    fail "man ckptmpi lacks its ENVIRONMENT or EXIT STATUS: $(snip "$WORK/man.txt")"

# the user's program: natively, with pkg-config, with CMake
mkdirs "$WORK/app"
cp "$SRC_DIR/test/install/app.c" "$SRC_DIR/test/install/CMakeLists.txt" "$WORK/app/"
mpicc.mpich -O1 -o "$WORK/app/app_native" "$WORK/app/app.c" ||
    fail "native build failed"
# shellcheck disable=SC2046
mpicc.mpich -O1 -o "$WORK/app/app_pc" "$WORK/app/app.c" \
    $(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --cflags --libs ckptmpi-mpich) ||
    fail "build with pkg-config ckptmpi-mpich failed"
cmake -S "$WORK/app" -B "$WORK/app/build" -DCMAKE_PREFIX_PATH="$P" -DFLAVOUR=mpich \
    -DMPI_C_COMPILER=mpicc.mpich >"$WORK/cmake.log" 2>&1 &&
    cmake --build "$WORK/app/build" >>"$WORK/cmake.log" 2>&1 ||
    fail "the CMake project with find_package(ckptmpi) did not build: $(tail -n 8 "$WORK/cmake.log")"
chmod -R a+rX "$WORK/app"
for exe in "$WORK/app/app_pc" "$WORK/app/build/app"; do
    rp=$(readelf -d "$exe" | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p')
    [[ $rp == *"$P/lib/ckptmpi/mpich"* ]] || fail "$exe: RUNPATH '$rp' does not name $P/lib/ckptmpi/mpich"
    [[ $rp != *"/.."* ]] || fail "$exe: RUNPATH '$rp' has a .."
    readelf -d "$exe" | grep -q 'NEEDED.*libckptmpi' || fail "$exe is not linked with the ckptmpi shim"
done
log "both builds linked with the shim, RUNPATH $P/lib/ckptmpi/mpich"

# the CMake build under ckptmpi, uninterrupted: the plain run's output
MPI_NP=2
mpi_run "$WORK/app" "$WORK/native.out" -- "$WORK/app/app_native" 8 0
mpi_run "$WORK/app" "$WORK/cmake_app.out" CKPTMPI_DIR="$WORK/ck_cmake" -- "$WORK/app/build/app" 8 0
same_file "$WORK/native.out" "$WORK/cmake_app.out" "output of the CMake-built program under ckptmpi"

# the pkg-config build checkpointed by the installed ckptmpi, killed, restarted
MPI_TRIGGER=command
MPI_NATIVE=("$WORK/app/app_native" 24 1)   # (the sleep only paces the run)
MPI_CKPTCMD=("$WORK/app/app_pc" 24 100)
mpi_ckpt_flow
log "PASS"
