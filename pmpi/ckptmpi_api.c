/* libckptmpi.so, upper half: the optional application hooks of ckptmpi.h.
 * It only talks to the runtime through the link (core/link.h); it never
 * calls into the lower half, so it needs no thread-pointer switch. */
#include "include/ckptmpi.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pmpi/link_find.h"

int ckptmpi_active(void) { return ckpt_find_link() != NULL; }

int ckptmpi_checkpoint(void)
{
	struct ckptmpi_link *l = ckpt_find_link();
	int32_t seq, committed, failed, epoch;
	char why = CKPTMPI_REQ_API;

	if (!l) {
		errno = ENOSYS;
		return -1;
	}
	seq = __atomic_load_n(&l->seq, __ATOMIC_ACQUIRE);
	committed = l->committed;
	failed = l->failed;
	epoch = l->epoch;
	if (write(l->trigger_fd, &why, 1) != 1)
		return -1;
	for (;;) {
		/* a restart resumes this loop in a new process: epoch moved */
		if (l->epoch != epoch)
			return CKPTMPI_RESTARTED;
		if (l->committed != committed)
			return CKPTMPI_RESUMED;
		if (l->failed != failed) {
			errno = EIO;
			return -1;
		}
		syscall(SYS_futex, &l->seq, FUTEX_WAIT, seq, NULL, NULL, 0);
		seq = __atomic_load_n(&l->seq, __ATOMIC_ACQUIRE);
	}
}
