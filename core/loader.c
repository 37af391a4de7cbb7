#include "core/loader.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/control.h"
#include "core/elf_file.h"
#include "core/log.h"
#include "core/rawsys.h"

struct upper_facts upper;

#define PAGE 4096ull
#define PAGE_DOWN(x) ((x) & ~(PAGE - 1))
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))

int loader_resolve(const char *program, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(program, '/')) {
		if (!realpath(program, out)) {
			log_error("%s: %s", program, strerror(errno));
			return -1;
		}
		(void)len;
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);
		snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? path : ".", program);
		if (access(buf, X_OK) == 0 && realpath(buf, out))
			return 0;
		path += n + (colon ? 1 : 0);
	}
	log_error("%s: command not found", program);
	return -1;
}

/* Map an ET_DYN object at a kernel-chosen address with raw (unrouted)
 * mmaps, so it lands outside the lower window. Returns its base. */
static uint64_t map_object(const char *path, Elf64_Ehdr *eh)
{
	Elf64_Phdr ph[32];
	uint64_t lo = UINT64_MAX, hi = 0, base = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *r;

	if (fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		return 0;
	}
	if (pread(fd, eh, sizeof *eh, 0) != sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_type != ET_DYN || eh->e_phnum > 32 ||
	    pread(fd, ph, eh->e_phnum * sizeof *ph, (off_t)eh->e_phoff) !=
	            (ssize_t)(eh->e_phnum * sizeof *ph)) {
		log_error("%s: not a loadable ELF shared object", path);
		goto out;
	}
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (PAGE_DOWN(ph[i].p_vaddr) < lo)
			lo = PAGE_DOWN(ph[i].p_vaddr);
		if (PAGE_UP(ph[i].p_vaddr + ph[i].p_memsz) > hi)
			hi = PAGE_UP(ph[i].p_vaddr + ph[i].p_memsz);
	}
	r = raw_mmap(NULL, hi - lo, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw_is_err((long)r)) {
		log_error("%s: cannot reserve %llu bytes", path, (unsigned long long)(hi - lo));
		goto out;
	}
	base = (uint64_t)r - lo;
	for (int i = 0; i < eh->e_phnum; i++) {
		uint64_t start, fend, mend;
		int prot;

		if (ph[i].p_type != PT_LOAD)
			continue;
		prot = ((ph[i].p_flags & PF_R) ? PROT_READ : 0) |
		       ((ph[i].p_flags & PF_W) ? PROT_WRITE : 0) |
		       ((ph[i].p_flags & PF_X) ? PROT_EXEC : 0);
		start = PAGE_DOWN(base + ph[i].p_vaddr);
		fend = base + ph[i].p_vaddr + ph[i].p_filesz;
		mend = PAGE_UP(base + ph[i].p_vaddr + ph[i].p_memsz);
		r = raw_mmap((void *)start, PAGE_UP(fend) - start, prot | PROT_WRITE,
		             MAP_PRIVATE | MAP_FIXED, fd, (long)PAGE_DOWN(ph[i].p_offset));
		if (raw_is_err((long)r)) {
			log_error("%s: cannot map segment %d", path, i);
			base = 0;
			goto out;
		}
		/* .bss: zero the tail of the last file page, map the rest */
		if (ph[i].p_memsz > ph[i].p_filesz) {
			memset((void *)fend, 0, PAGE_UP(fend) - fend);
			if (mend > PAGE_UP(fend)) {
				r = raw_mmap((void *)PAGE_UP(fend), mend - PAGE_UP(fend), prot,
				             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
				if (raw_is_err((long)r)) {
					log_error("%s: cannot map bss", path);
					base = 0;
					goto out;
				}
			}
		}
		raw_syscall3(SYS_mprotect, start, PAGE_UP(fend) - start, prot);
	}
out:
	close(fd);
	return base;
}

/* The lower libc registered rseq for this thread; the upper libc must be
 * able to register its own, so give the registration up first. */
static void unregister_lower_rseq(void)
{
	if (__rseq_size == 0)
		return;
	long r = raw_syscall4(SYS_rseq, (char *)__builtin_thread_pointer() + __rseq_offset,
	                      __rseq_size < 32 ? 32 : __rseq_size, 1 /* UNREGISTER */, RSEQ_SIG);
	if (r)
		log_debug("rseq unregister: %ld", r);
}

static __attribute__((noreturn)) void jump_to(uint64_t sp, uint64_t entry)
{
	__asm__ volatile("mov %0, %%rsp\n\t"
	                 "xor %%edx, %%edx\n\t" /* no rtld_fini */
	                 "xor %%ebp, %%ebp\n\t"
	                 "jmp *%1\n\t"
	                 :
	                 : "r"(sp), "r"(entry)
	                 : "memory");
	__builtin_unreachable();
}

int loader_start_upper(const char *path, char *const argv[], char *const envp[])
{
	char err[512];
	Elf64_Ehdr eh;
	struct rlimit rl;
	uint64_t stack_size = 8ull << 20, top, sp, base;
	size_t argc = 0, envc = 0, nargs;
	char *stack;
	void *r;

	if (elf_interpreter(path, upper.interp, sizeof upper.interp, err, sizeof err)) {
		log_error("%s", err);
		return -1;
	}
	snprintf(upper.program, sizeof upper.program, "%s", path);
	base = map_object(upper.interp, &eh);
	if (!base)
		return -1;
	upper.interp_base = base;
	{
		uint64_t rd = elf_dynamic_symbol(upper.interp, "_r_debug");
		control_set_upper_loader(base, rd ? base + rd : 0);
	}

	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur > stack_size && rl.rlim_cur <= (1ull << 30))
		stack_size = PAGE_UP(rl.rlim_cur);
	r = raw_mmap(NULL, stack_size + PAGE, PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (raw_is_err((long)r)) {
		log_error("cannot map the application stack");
		return -1;
	}
	raw_syscall3(SYS_mprotect, r, PAGE, PROT_NONE); /* guard */
	stack = r;
	top = (uint64_t)stack + stack_size + PAGE;

	while (argv[argc])
		argc++;
	while (envp[envc])
		envc++;
	nargs = argc + 3; /* ld.so --argv0 ARGV0 PROGRAM ARGS... */

	/* strings at the top */
	sp = top;
#define PUSH_STR(s) (sp -= strlen(s) + 1, memcpy((void *)sp, (s), strlen(s) + 1), sp)
	uint64_t *ustr = malloc((nargs + envc) * sizeof *ustr);
	if (!ustr)
		return -1;
	ustr[0] = PUSH_STR(upper.interp);
	ustr[1] = PUSH_STR("--argv0");
	ustr[2] = PUSH_STR(argv[0]);
	ustr[3] = PUSH_STR(path);
	for (size_t i = 1; i < argc; i++)
		ustr[3 + i] = PUSH_STR(argv[i]);
	for (size_t i = 0; i < envc; i++)
		ustr[nargs + i] = PUSH_STR(envp[i]);
	uint64_t execfn = PUSH_STR(path);
	uint64_t platform = PUSH_STR("x86_64");
	/* AT_RANDOM seeds the upper half's stack guard and pointer mangling:
	 * the kernel's bytes for this process */
	sp -= 16;
	uint64_t random = sp;
	memcpy((void *)random, (const void *)getauxval(AT_RANDOM), 16);
#undef PUSH_STR

	Elf64_auxv_t aux[] = {
		{AT_PHDR, {base + eh.e_phoff}},
		{AT_PHENT, {sizeof(Elf64_Phdr)}},
		{AT_PHNUM, {eh.e_phnum}},
		{AT_PAGESZ, {PAGE}},
		{AT_BASE, {0}},
		{AT_FLAGS, {0}},
		{AT_ENTRY, {base + eh.e_entry}},
		{AT_UID, {getuid()}},
		{AT_EUID, {geteuid()}},
		{AT_GID, {getgid()}},
		{AT_EGID, {getegid()}},
		{AT_SECURE, {0}},
		{AT_RANDOM, {random}},
		{AT_HWCAP, {getauxval(AT_HWCAP)}},
		{AT_HWCAP2, {getauxval(AT_HWCAP2)}},
		{AT_CLKTCK, {getauxval(AT_CLKTCK)}},
		{AT_PLATFORM, {platform}},
		{AT_EXECFN, {execfn}},
		{AT_SYSINFO_EHDR, {getauxval(AT_SYSINFO_EHDR)}},
		{51 /* AT_MINSIGSTKSZ */, {getauxval(51)}},
		{AT_NULL, {0}},
	};
	size_t words = 1 + nargs + 1 + envc + 1 + 2 * (sizeof aux / sizeof aux[0]);
	sp = (sp - words * 8) & ~15ull;
	uint64_t *w = (uint64_t *)sp;
	*w++ = nargs;
	for (size_t i = 0; i < nargs; i++)
		*w++ = ustr[i];
	*w++ = 0;
	for (size_t i = 0; i < envc; i++)
		*w++ = ustr[nargs + i];
	*w++ = 0;
	memcpy(w, aux, sizeof aux);
	free(ustr);

	log_debug("upper loader %s at %#llx, stack top %#llx", upper.interp,
	          (unsigned long long)base, (unsigned long long)top);
	unregister_lower_rseq();
	control_upper_started();
	jump_to(sp, base + eh.e_entry);
}

void loader_read_rseq_facts(void)
{
	uint64_t off, size;

	if (!upper.interp_base || upper.rseq_size)
		return;
	off = elf_dynamic_symbol(upper.interp, "__rseq_offset");
	size = elf_dynamic_symbol(upper.interp, "__rseq_size");
	if (!off || !size)
		return;
	upper.rseq_offset = *(const int64_t *)(upper.interp_base + off);
	upper.rseq_size = *(const unsigned int *)(upper.interp_base + size);
}
