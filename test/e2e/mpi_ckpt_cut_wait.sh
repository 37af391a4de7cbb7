#!/usr/bin/env bash
# mpi_ckpt_cut_wait: mpi_ckpt_cut_progress.sh at an even line: the settled
# rank must run on to send what the rank behind waits for.
AT=4 exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_cut_progress.sh"
