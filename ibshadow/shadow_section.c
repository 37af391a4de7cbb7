/* The verbs shadow's section word (shadow_section.h). */
#include "ibshadow/shadow_section.h"

#include <asm/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/link.h"
#include "pmpi/link_find.h"

__thread struct ibs_section_word ibs_section __attribute__((tls_model("initial-exec")));

int64_t ibs_section_offset(void)
{
	uint64_t fs = 0;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
	return (int64_t)((uintptr_t)&ibs_section - fs);
}

/* met inside a section by the park handler: stop now, on leaving it (the
 * runtime's park signal, as the MPI shim does, pmpi/section.c) */
void ibs_section_park_now(void)
{
	static int sig = -1;
	ibs_section.pending = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (sig < 0) {
		struct ckptmpi_link *l = ckpt_find_link();
		sig = l ? l->park_signal : 0;
	}
	if (sig > 0)
		syscall(SYS_tgkill, getpid(), gettid(), sig);
}
