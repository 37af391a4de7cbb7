#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/dirty_pages.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "core/log.h"
#include "core/procstate.h"

/* Linux 6.7's uapi, newer than the headers of this distribution */
struct ck_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct ck_page_region { uint64_t start, end, categories; };
#define CK_PAGEMAP_SCAN _IOWR('f', 16, struct ck_pm_scan_arg)
#define CK_PM_SCAN_WP_MATCHING (1ull << 0)
#define CK_PM_SCAN_CHECK_WPASYNC (1ull << 1)
#define CK_PAGE_IS_WRITTEN (1ull << 1)
#define CK_UFFD_FEATURE_WP_UNPOPULATED (1ull << 13)
#define CK_UFFD_FEATURE_WP_ASYNC (1ull << 15)
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static int uffd = -1, pagemap = -1;
static int unavailable, disabled;
static uint64_t base_gen, base_depth;

static int open_tracking(void)
{
	struct uffdio_api api = { .api = UFFD_API,
	                          .features = CK_UFFD_FEATURE_WP_ASYNC | CK_UFFD_FEATURE_WP_UNPOPULATED };
	int fd;

	if (uffd >= 0)
		return 0;
	if (unavailable)
		return -1;
	/* user-mode only: what vm.unprivileged_userfaultfd=0 still allows;
	 * asynchronous write protection never raises a fault to a reader,
	 * so the kernel's own writes (read(2) into the program's memory)
	 * are tracked too */
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		log_info("incremental generations off: userfaultfd: %s (every generation is full)",
		         strerror(errno));
		unavailable = 1;
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		log_info("incremental generations off: userfaultfd without asynchronous write "
		         "protection (Linux 6.7): %s (every generation is full)", strerror(errno));
		close(fd);
		unavailable = 1;
		return -1;
	}
	if ((fd = procstate_move_lower_fd(fd)) < 0) {
		unavailable = 1;
		return -1;
	}
	if ((pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0 ||
	    (pagemap = procstate_move_lower_fd(pagemap)) < 0) {
		log_info("incremental generations off: /proc/self/pagemap: %s", strerror(errno));
		close(fd);
		unavailable = 1;
		return -1;
	}
	uffd = fd;
	return 0;
}

int dirty_available(void) { return !disabled && open_tracking() == 0; }

void dirty_enable(int on) { disabled = !on; }

/* One PAGEMAP_SCAN pass over [start, end) that write-protects the written
 * pages it reports. 0, 1 (EPERM: part of it not registered), -1. */
static int scan(uint64_t start, uint64_t end, dirty_range_fn fn, void *ctx)
{
	struct ck_page_region vec[512];
	struct ck_pm_scan_arg a;
	uint64_t at = start;

	while (at < end) {
		long n;

		memset(&a, 0, sizeof a);
		a.size = sizeof a;
		a.flags = CK_PM_SCAN_WP_MATCHING | CK_PM_SCAN_CHECK_WPASYNC;
		a.start = at;
		a.end = end;
		a.vec = (uint64_t)(uintptr_t)vec;
		a.vec_len = sizeof vec / sizeof vec[0];
		a.category_mask = CK_PAGE_IS_WRITTEN;
		a.return_mask = CK_PAGE_IS_WRITTEN;
		n = ioctl(pagemap, CK_PAGEMAP_SCAN, &a);
		if (n < 0) {
			if (errno == EPERM)
				return 1;
			log_error("PAGEMAP_SCAN %#llx-%#llx: %s", (unsigned long long)at,
			          (unsigned long long)end, strerror(errno));
			return -1;
		}
		for (long i = 0; i < n; i++)
			if (fn && fn(ctx, vec[i].start, vec[i].end))
				return -1;
		if (a.walk_end <= at) {
			log_error("PAGEMAP_SCAN %#llx-%#llx made no progress", (unsigned long long)at,
			          (unsigned long long)end);
			return -1;
		}
		at = a.walk_end;
	}
	return 0;
}

static int register_range(uint64_t start, uint64_t end, uint64_t mode)
{
	struct uffdio_register reg = { .range = { start, end - start }, .mode = mode };

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		/* a mapping userfaultfd refuses: saved whole every time */
		log_debug("userfaultfd cannot track %#llx-%#llx: %s", (unsigned long long)start,
		          (unsigned long long)end, strerror(errno));
		return -1;
	}
	/* protect every page: what it reports now is dropped */
	return scan(start, end, NULL, NULL) == 0 ? 0 : -1;
}

int dirty_scan(uint64_t start, uint64_t end, dirty_range_fn fn, void *ctx)
{
	if (disabled || open_tracking())
		return 1;
	return scan(start, end, fn, ctx);
}

int dirty_track(uint64_t start, uint64_t end)
{
	if (disabled || open_tracking())
		return -1;
	return register_range(start, end, UFFDIO_REGISTER_MODE_WP);
}

int dirty_track_missing(uint64_t start, uint64_t end)
{
	/* the protection leaves a marker on every page: a touch of one is
	 * a missing page still (an anonymous mapping's marker faults as
	 * one), and the loader's copies may land on markers */
	if (disabled || open_tracking())
		return -1;
	return register_range(start, end, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
}

int dirty_uffd(void) { return uffd; }

void dirty_set_base(uint64_t generation, uint64_t depth)
{
	base_gen = generation;
	base_depth = depth;
}

uint64_t dirty_base(void) { return base_gen; }

uint64_t dirty_depth(void) { return base_depth; }

uint64_t dirty_next_parent(unsigned full_every)
{
	if (full_every <= 1 || !base_gen || base_depth + 1 >= full_every)
		return 0;
	return base_gen;
}
