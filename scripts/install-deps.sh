#!/bin/bash
# Install the Debian packages ckptmpi needs to build and test, if missing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config libhdf5-dev hdf5-tools libcmocka-dev python3 util-linux procps
      libhdf5-openmpi-dev libhdf5-mpich-dev
      mpich libmpich-dev openmpi-bin libopenmpi-dev python3-mpi4py hpcc)
# verbs (ibshadow): headers for test/verbs, Debian's verbs tools as e2e
# tests, pyverbs for rdma-core's own test suite (the rdma-core package
# ships those tests in /usr/share/doc/rdma-core/tests)
PKGS+=(libibverbs-dev ibverbs-utils perftest python3-pyverbs rdma-core)
# LAMMPS (molecular dynamics, built against OpenMPI): a real application,
# checkpointed and restarted in test/e2e/mpi_ckpt_lammps.sh, timed in bench/
PKGS+=(lammps)
PKGS+=(man-db)     # man(1): test/e2e/cli_install.sh reads the installed page
PKGS+=(gdb tmux)   # ckptmpi debug / bisect (GDB with Python) and their tests (tmux: typed into)
PKGS+=(iproute2)   # network namespaces standing in for hosts (test/e2e/job_netns.sh)
# zstd, lz4 and Blosc chunks (storage/codec.c); Debian's HDF5 filter plugins
# (lz4, bzip2; Blosc's), h5py and python3-zstandard read them back in
# test/e2e/compress.sh; gnuplot draws the bench plots
PKGS+=(libzstd-dev liblz4-dev zlib1g-dev libblosc-dev hdf5-filter-plugin
       hdf5-filter-plugin-blosc-serial python3-h5py python3-zstandard gnuplot-nox)
# a one-node Slurm cluster started by test/e2e/slurm_jobs.sh (slurmctld,
# slurmd, sbatch/srun/scontrol) and its authentication daemon
PKGS+=(slurm-wlm munge)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ckptmpi: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "ckptmpi: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
