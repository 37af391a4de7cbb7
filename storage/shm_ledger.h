/* Shared memory that a process's lower half made for its job (an MPI's
 * segments in /dev/shm, made in MPI_Init), listed in the checkpoint
 * directory as .shm.HOST.PID: a job killed before it could remove them
 * leaves them behind, and the next run on the directory removes them. */
#ifndef CKPTMPI_STORAGE_SHM_LEDGER_H
#define CKPTMPI_STORAGE_SHM_LEDGER_H

#define SHM_LEDGER_MAX 64

/* the files of /dev/shm this process maps */
struct shm_set {
	unsigned n;
	char path[SHM_LEDGER_MAX][128];
};

void shm_ledger_snapshot(struct shm_set *s);
/* List in DIR the files this process maps now and did not at BEFORE (none:
 * no ledger). 0, or -1 with container_error() set. */
int shm_ledger_record(const char *dir, const struct shm_set *before);
/* This process's ledger away (its lower half removed the files itself). */
void shm_ledger_drop(void);
/* The ledgers in DIR of this host's processes that are gone: the files
 * they list that still exist and are this user's, then the ledgers.
 * *removed counts the files. 0, or -1 with container_error() set. */
int shm_ledger_clean(const char *dir, unsigned *removed);

#endif
