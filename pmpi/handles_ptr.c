/* Handles of an ABI whose handles are pointers (OpenMPI), upper half.
 * The application's predefined handles are addresses of objects the shim
 * defines — or of the executable's copies of them, when the linker made
 * copy relocations. Each canonical object (what dlsym finds in the upper
 * half) is stamped with the real MPI object's address and a check word, so
 * an input handle translates with one load (pmpi/call.h).
 * Outputs that are real predefined objects are mapped back, so the
 * application's comparisons (req == MPI_REQUEST_NULL) hold. Other handles
 * pass through for now (virtual handles replace this). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

#include "pmpi/call.h"

extern const unsigned ckpt_predef_count;
extern const char *const ckpt_predef_names[];
extern const unsigned ckpt_predef_sizes[];

struct pair { uintptr_t lower, upper; };
static struct pair *rev;   /* sorted by lower: outputs back to the application */
static unsigned nrev;
uintptr_t ckpt_predef_min = UINTPTR_MAX, ckpt_predef_max;

static int by_lower(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	return (x->lower > y->lower) - (x->lower < y->lower);
}



int ckpt_predef_bind(const uint64_t *lower, unsigned n)
{
	if (n != ckpt_predef_count)
		return -1;
	rev = calloc(n, sizeof *rev);
	if (!rev)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		void *canon = dlsym(RTLD_DEFAULT, ckpt_predef_names[i]);
		if (!lower[i] || !canon)
			continue;
		/* stamp the application's object: the real address and a check
		 * word, so translation is a load (objects of handles are >= 256
		 * bytes; the 8-byte MPI_F_STATUS* are not handles) */
		if (ckpt_predef_sizes[i] >= 16) {
			((uint64_t *)canon)[0] = lower[i];
			((uint64_t *)canon)[1] = CKPT_PREDEF_STAMP ^ (uint64_t)(uintptr_t)canon;
		}
		rev[nrev].lower = lower[i];
		rev[nrev].upper = (uintptr_t)canon;
		if ((uintptr_t)canon < ckpt_predef_min)
			ckpt_predef_min = (uintptr_t)canon;
		if ((uintptr_t)canon > ckpt_predef_max)
			ckpt_predef_max = (uintptr_t)canon;
		nrev++;
	}
	qsort(rev, nrev, sizeof *rev, by_lower);
	return 0;
}

void *ckpt_vh_out_ptr(void *h)
{
	unsigned lo = 0, hi = nrev;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (rev[mid].lower < (uintptr_t)h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nrev && rev[lo].lower == (uintptr_t)h ? (void *)rev[lo].upper : h;
}
