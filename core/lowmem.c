/* The mmap router runs inside the lower libc's mmap: it must not call
 * anything that maps memory (no malloc, no stdio); raw syscalls only. */
#include "core/lowmem.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <unistd.h>

#include "core/log.h"
#include "core/maps.h"
#include "core/rawsys.h"

#define PAGE 4096ull
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))
#define MAX_FREE 16384
#define MAX_EXTRA 4096

struct ext { uint64_t start, end; };

static struct ext free_ext[MAX_FREE];   /* free parts of the window, sorted */
static int n_free;
static struct ext extra[MAX_EXTRA];     /* lower mappings outside the window */
static int n_extra;
static volatile int router_lock;
static struct interval_set snapshot;    /* lower memory that predates the router */

static void lock(void)
{
	while (__atomic_exchange_n(&router_lock, 1, __ATOMIC_ACQUIRE))
		raw_syscall0(SYS_sched_yield);
}
static void unlock(void) { __atomic_store_n(&router_lock, 0, __ATOMIC_RELEASE); }

static int in_window(uint64_t a)
{
	return a >= LOWMEM_WINDOW_BASE && a < LOWMEM_WINDOW_BASE + LOWMEM_WINDOW_SIZE;
}

/* Take [start,end) out of the free list (it may span several extents). */
static void take_range(uint64_t start, uint64_t end)
{
	for (int i = 0; i < n_free && free_ext[i].start < end; i++) {
		struct ext e = free_ext[i];
		if (e.end <= start)
			continue;
		if (e.start < start && e.end > end) {
			if (n_free == MAX_FREE)
				return; /* fragment lost: harmless, stays reserved */
			memmove(&free_ext[i + 1], &free_ext[i], (size_t)(n_free - i) * sizeof *free_ext);
			n_free++;
			free_ext[i].end = start;
			free_ext[i + 1].start = end;
			return;
		}
		if (e.start < start) {
			free_ext[i].end = start;
		} else if (e.end > end) {
			free_ext[i].start = end;
			return;
		} else {
			memmove(&free_ext[i], &free_ext[i + 1], (size_t)(n_free - i - 1) * sizeof *free_ext);
			n_free--;
			i--;
		}
	}
}

static void give_range(uint64_t start, uint64_t end)
{
	int i = 0;

	while (i < n_free && free_ext[i].end < start)
		i++;
	if (i < n_free && free_ext[i].start <= end) {
		/* overlaps or touches extent i: widen it and absorb followers */
		if (start < free_ext[i].start)
			free_ext[i].start = start;
		if (end > free_ext[i].end)
			free_ext[i].end = end;
		while (i + 1 < n_free && free_ext[i + 1].start <= free_ext[i].end) {
			if (free_ext[i + 1].end > free_ext[i].end)
				free_ext[i].end = free_ext[i + 1].end;
			memmove(&free_ext[i + 1], &free_ext[i + 2],
			        (size_t)(n_free - i - 2) * sizeof *free_ext);
			n_free--;
		}
		return;
	}
	if (n_free == MAX_FREE)
		return;
	memmove(&free_ext[i + 1], &free_ext[i], (size_t)(n_free - i) * sizeof *free_ext);
	free_ext[i].start = start;
	free_ext[i].end = end;
	n_free++;
}

static int range_free(uint64_t start, uint64_t end)
{
	for (int i = 0; i < n_free; i++)
		if (free_ext[i].start <= start && free_ext[i].end >= end)
			return 1;
	return 0;
}

static uint64_t window_alloc(uint64_t len, uint64_t hint)
{
	if (hint && in_window(hint) && range_free(hint, hint + len)) {
		take_range(hint, hint + len);
		return hint;
	}
	for (int i = 0; i < n_free; i++) {
		if (free_ext[i].end - free_ext[i].start >= len) {
			uint64_t a = free_ext[i].start;
			take_range(a, a + len);
			return a;
		}
	}
	return 0;
}

static void extra_add(uint64_t start, uint64_t end)
{
	if (n_extra < MAX_EXTRA) {
		extra[n_extra].start = start;
		extra[n_extra].end = end;
		n_extra++;
	}
}

/* A mapping the kernel placed (a fixed address, a remap, a shmat): taken
 * from the window if inside it, else remembered beside it. Lock held. */
static void account_placed(uint64_t start, uint64_t end)
{
	if (in_window(start))
		take_range(start, end);
	else
		extra_add(start, end);
}

static void extra_remove(uint64_t start, uint64_t end)
{
	for (int i = 0; i < n_extra; i++) {
		if (extra[i].start >= start && extra[i].end <= end) {
			extra[i] = extra[--n_extra];
			i--;
		} else if (extra[i].start < end && extra[i].end > start) {
			/* partial unmap: keep the larger remaining side recorded;
			 * the lower set is rebuilt from maps at the next checkpoint */
			if (extra[i].start < start)
				extra[i].end = start;
			else
				extra[i].start = end;
		}
	}
}

static void *reserve(uint64_t start, uint64_t len)
{
	return raw_mmap((void *)start, len, PROT_NONE,
	                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
}

static void *fail_errno(long r)
{
	errno = (int)-r;
	return MAP_FAILED;
}

static void *router_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uint64_t a, alen = PAGE_UP(len);
	void *r;

	if (len == 0 || (flags & MAP_32BIT)) {
		r = raw_mmap(addr, len, prot, flags, fd, off);
		return raw_is_err((long)r) ? fail_errno((long)r) : r;
	}
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		r = raw_mmap(addr, len, prot, flags, fd, off);
		if (raw_is_err((long)r))
			return fail_errno((long)r);
		lock();
		account_placed((uint64_t)r, (uint64_t)r + alen);
		unlock();
		return r;
	}
	lock();
	a = window_alloc(alen, (uint64_t)addr);
	unlock();
	if (!a) {
		/* window exhausted: let the kernel place it and remember it */
		r = raw_mmap(addr, len, prot, flags, fd, off);
		if (raw_is_err((long)r))
			return fail_errno((long)r);
		lock();
		extra_add((uint64_t)r, (uint64_t)r + alen);
		unlock();
		return r;
	}
	r = raw_mmap((void *)a, len, prot, flags | MAP_FIXED, fd, off);
	if (raw_is_err((long)r)) {
		lock();
		give_range(a, a + alen);
		unlock();
		return fail_errno((long)r);
	}
	return r;
}

static int router_munmap(void *addr, size_t len)
{
	uint64_t a = (uint64_t)addr, alen = PAGE_UP(len);
	long r;

	if (in_window(a) && alen && in_window(a + alen - 1)) {
		void *p = reserve(a, alen);
		if (raw_is_err((long)p)) {
			errno = (int)-(long)p;
			return -1;
		}
		lock();
		give_range(a, a + alen);
		unlock();
		return 0;
	}
	r = raw_syscall2(SYS_munmap, addr, len);
	if (raw_is_err(r)) {
		errno = (int)-r;
		return -1;
	}
	lock();
	extra_remove(a, a + alen);
	unlock();
	return 0;
}

static void *router_mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	uint64_t o = (uint64_t)old, olen = PAGE_UP(old_len), nlen = PAGE_UP(new_len);
	void *fixed = NULL;
	long r;

	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		fixed = va_arg(ap, void *);
		va_end(ap);
	}
	if (!in_window(o) || (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP))) {
		r = raw_syscall6(SYS_mremap, (long)old, (long)old_len, (long)new_len, flags,
		                 (long)fixed, 0);
		if (raw_is_err(r))
			return fail_errno(r);
		if (!in_window(o) || !in_window((uint64_t)r)) {
			lock();
			extra_remove(o, o + olen);
			account_placed((uint64_t)r, (uint64_t)r + nlen);
			unlock();
		}
		return (void *)r;
	}
	if (nlen <= olen) {
		r = raw_syscall4(SYS_mremap, (long)old, (long)old_len, (long)new_len, 0);
		if (raw_is_err(r))
			return fail_errno(r);
		if (nlen < olen) {
			reserve(o + nlen, olen - nlen);
			lock();
			give_range(o + nlen, o + olen);
			unlock();
		}
		return old;
	}
	if (!(flags & MREMAP_MAYMOVE))
		return fail_errno(-ENOMEM); /* the reservation follows: cannot grow in place */
	{
		uint64_t n;
		lock();
		n = window_alloc(nlen, 0);
		unlock();
		if (!n)
			return fail_errno(-ENOMEM);
		r = raw_syscall6(SYS_mremap, (long)old, (long)old_len, (long)new_len,
		                 MREMAP_MAYMOVE | MREMAP_FIXED, (long)n, 0);
		if (raw_is_err(r)) {
			lock();
			give_range(n, n + nlen);
			unlock();
			return fail_errno(r);
		}
		reserve(o, olen);
		lock();
		give_range(o, o + olen);
		unlock();
		return (void *)r;
	}
}

/* System V shared memory attached by the lower half (UCX's sysv
 * transport under MPICH and OpenMPI): placed in the window too, else the
 * kernel puts it among the program's memory, where it passed for the
 * program's own shared memory (saved in every image, re-created at a
 * restart, and read by a writer behind the program while the MPI library
 * changes it). Attachments, to give the room back at shmdt. */
#define MAX_SHM 256
static struct ext shm_att[MAX_SHM];
static int n_shm;

static void *router_shmat(int id, const void *addr, int flags)
{
	struct shmid_ds ds;
	uint64_t a = 0, len = 0;
	long r;

	if (!addr && raw_syscall3(SYS_shmctl, id, IPC_STAT, &ds) == 0 && ds.shm_segsz) {
		len = PAGE_UP(ds.shm_segsz);
		lock();
		a = n_shm < MAX_SHM ? window_alloc(len, 0) : 0;
		unlock();
	}
	if (a) {
		/* over the window's reservation: SHM_REMAP replaces it */
		r = raw_syscall3(SYS_shmat, id, a, flags | SHM_REMAP);
		if (raw_is_err(r)) {
			lock();
			give_range(a, a + len);
			unlock();
			a = 0;
		}
	}
	if (!a) {
		r = raw_syscall3(SYS_shmat, id, addr, flags);
		if (raw_is_err(r))
			return fail_errno(r);
		if (raw_syscall3(SYS_shmctl, id, IPC_STAT, &ds) == 0)
			len = PAGE_UP(ds.shm_segsz);
		lock();
		account_placed((uint64_t)r, (uint64_t)r + len);
		unlock();
	}
	lock();
	if (n_shm < MAX_SHM) {
		shm_att[n_shm].start = (uint64_t)r;
		shm_att[n_shm].end = (uint64_t)r + len;
		n_shm++;
	}
	unlock();
	return (void *)r;
}

static int router_shmdt(const void *addr)
{
	uint64_t a = (uint64_t)addr, end = 0;
	long r = raw_syscall1(SYS_shmdt, addr);

	if (raw_is_err(r)) {
		errno = (int)-r;
		return -1;
	}
	lock();
	for (int i = 0; i < n_shm; i++)
		if (shm_att[i].start == a) {
			end = shm_att[i].end;
			shm_att[i] = shm_att[--n_shm];
			break;
		}
	if (end && in_window(a)) {
		/* reserved again before another thread's mmap can take it */
		(void)reserve(a, end - a);
		give_range(a, end);
	} else if (end) {
		extra_remove(a, end);
	}
	unlock();
	return 0;
}

/* Overwrite the first 12 bytes of fn with "movabs $to, %rax; jmp *%rax".
 * %rax is free at a function's entry on x86-64 (not an argument register
 * except for varargs' vector count, which these callees ignore). */
static int patch_jump(void *fn, void *to, const char *name)
{
	unsigned char code[12] = {0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xe0};
	uint64_t page = (uint64_t)fn & ~(PAGE - 1);
	uint64_t plen = ((uint64_t)fn + sizeof code > page + PAGE) ? 2 * PAGE : PAGE;

	memcpy(code + 2, &to, 8);
	if (mprotect((void *)page, plen, PROT_READ | PROT_WRITE | PROT_EXEC)) {
		log_error("cannot route lower-half %s: mprotect: %s", name, strerror(errno));
		return -1;
	}
	memcpy(fn, code, sizeof code);
	__builtin___clear_cache((char *)fn, (char *)fn + sizeof code);
	if (mprotect((void *)page, plen, PROT_READ | PROT_EXEC)) {
		log_error("cannot route lower-half %s: mprotect: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

int lowmem_init(void)
{
	void *w, *f_mmap, *f_munmap, *f_mremap, *f_shmat, *f_shmdt;

	w = raw_mmap((void *)LOWMEM_WINDOW_BASE, LOWMEM_WINDOW_SIZE, PROT_NONE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (raw_is_err((long)w)) {
		log_error("cannot reserve the lower-half window at %#llx: %s",
		          LOWMEM_WINDOW_BASE, strerror((int)-(long)w));
		return -1;
	}
	free_ext[0].start = LOWMEM_WINDOW_BASE;
	free_ext[0].end = LOWMEM_WINDOW_BASE + LOWMEM_WINDOW_SIZE;
	n_free = 1;

	f_mmap = dlsym(RTLD_DEFAULT, "mmap");
	f_munmap = dlsym(RTLD_DEFAULT, "munmap");
	f_mremap = dlsym(RTLD_DEFAULT, "mremap");
	f_shmat = dlsym(RTLD_DEFAULT, "shmat");
	f_shmdt = dlsym(RTLD_DEFAULT, "shmdt");
	if (!f_mmap || !f_munmap || !f_mremap || !f_shmat || !f_shmdt) {
		log_error("cannot find the lower libc's mmap/munmap/mremap/shmat/shmdt");
		return -1;
	}
	if (patch_jump(f_mmap, (void *)router_mmap, "mmap") ||
	    patch_jump(f_munmap, (void *)router_munmap, "munmap") ||
	    patch_jump(f_mremap, (void *)router_mremap, "mremap") ||
	    patch_jump(f_shmat, (void *)router_shmat, "shmat") ||
	    patch_jump(f_shmdt, (void *)router_shmdt, "shmdt"))
		return -1;
	return 0;
}

int lowmem_mark_all_current(void)
{
	struct map_list m;
	int rc;

	if (maps_read_self(&m))
		return -1;
	rc = maps_to_intervals(&m, &snapshot);
	/* The runtime's own stack grows down as it goes deeper later (a
	 * restart runs deeper than a start): the kernel extends [stack] page by
	 * page, and a page it adds after this look would pass for the upper
	 * half's and be saved, then collide with the next runtime's stack at
	 * the restart after. Claim the room it may grow into (its rlimit,
	 * capped at the 128 MiB the kernel keeps free below the stack anyway). */
	for (size_t i = 0; !rc && i < m.n; i++)
		if (!strcmp(m.v[i].path, "[stack]")) {
			struct rlimit rl;
			uint64_t room = 128ull << 20;
			if (!getrlimit(RLIMIT_STACK, &rl) && rl.rlim_cur < room)
				room = rl.rlim_cur;
			if (m.v[i].start > room)
				rc = intervals_add(&snapshot, m.v[i].start - room, m.v[i].start);
		}
	maps_free(&m);
	return rc;
}

/* Mappings the runtime made for the upper half (lowmem_map_upper): never
 * claimed as lower by lowmem_account_change. Changed by the control thread
 * only (with the upper half parked), so no lock. */
static struct interval_set upper_claims;

void *lowmem_map_upper(size_t len)
{
	void *p = raw_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw_is_err((long)p))
		return NULL;
	if (intervals_add(&upper_claims, (uint64_t)p, (uint64_t)p + PAGE_UP(len))) {
		raw_syscall2(SYS_munmap, (long)p, (long)len);
		return NULL;
	}
	return p;
}

int lowmem_account_change(const struct interval_set *before, const struct interval_set *after)
{
	struct interval_set added = {0}, removed = {0}, both = {0};
	int rc = -1;

	for (size_t i = 0; i < before->n; i++)
		if (intervals_add(&both, before->v[i].start, before->v[i].end))
			goto out;
	for (size_t i = 0; i < upper_claims.n; i++)
		if (intervals_add(&both, upper_claims.v[i].start, upper_claims.v[i].end))
			goto out;
	/* claims are kept only until this look at the address space: the
	 * upper half unmaps them later by itself */
	intervals_free(&upper_claims);
	for (size_t i = 0; i < after->n; i++)
		if (intervals_subtract(&both, after->v[i].start, after->v[i].end, &added))
			goto out;
	for (size_t i = 0; i < before->n; i++)
		if (intervals_subtract(after, before->v[i].start, before->v[i].end, &removed))
			goto out;
	for (size_t i = 0; i < added.n; i++)
		if (intervals_add(&snapshot, added.v[i].start, added.v[i].end))
			goto out;
	for (size_t i = 0; i < removed.n; i++)
		if (intervals_remove(&snapshot, removed.v[i].start, removed.v[i].end))
			goto out;
	rc = 0;
out:
	intervals_free(&added);
	intervals_free(&removed);
	intervals_free(&both);
	return rc;
}

int lowmem_intervals(struct interval_set *out)
{
	struct ext ex[MAX_EXTRA];
	int n;

	for (size_t i = 0; i < snapshot.n; i++)
		if (intervals_add(out, snapshot.v[i].start, snapshot.v[i].end))
			return -1;
	if (intervals_add(out, LOWMEM_WINDOW_BASE, LOWMEM_WINDOW_BASE + LOWMEM_WINDOW_SIZE))
		return -1;
	lock();
	n = n_extra;
	memcpy(ex, extra, (size_t)n * sizeof *ex);
	unlock();
	for (int i = 0; i < n; i++)
		if (intervals_add(out, ex[i].start, ex[i].end))
			return -1;
	return 0;
}

int lowmem_block_brk(void)
{
	uint64_t brk_end = (uint64_t)raw_syscall1(SYS_brk, 0);
	void *g;

	brk_end = PAGE_UP(brk_end);
	g = raw_mmap((void *)brk_end, PAGE, PROT_NONE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (raw_is_err((long)g)) {
		log_error("cannot pin the program break at %#llx: %s",
		          (unsigned long long)brk_end, strerror((int)-(long)g));
		return -1;
	}
	return intervals_add(&snapshot, brk_end, brk_end + PAGE);
}
