/* Handles of an ABI whose handles are pointers (OpenMPI), upper half.
 * The application's predefined handles are addresses of objects the shim
 * defines — or of the executable's copies of them, when the linker made
 * copy relocations — so each is looked up by its canonical address (what
 * dlsym finds in the upper half) and mapped to the real MPI's object.
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
static struct pair *rev, *fwd;
static unsigned nrev;
uintptr_t ckpt_predef_min = UINTPTR_MAX, ckpt_predef_max;

static int by_lower(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	return (x->lower > y->lower) - (x->lower < y->lower);
}

static int by_upper(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	return (x->upper > y->upper) - (x->upper < y->upper);
}

/* v sorted by its upper (or lower) field; returns the other field of the
 * entry whose key is h, or h itself */
static void *find(const struct pair *v, unsigned n, int key_is_upper, uintptr_t h)
{
	unsigned lo = 0, hi = n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if ((key_is_upper ? v[mid].upper : v[mid].lower) < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && (key_is_upper ? v[lo].upper : v[lo].lower) == h)
		return (void *)(key_is_upper ? v[lo].lower : v[lo].upper);
	return (void *)h;
}

void *ckpt_vh_in_lookup(void *h) { return find(fwd, nrev, 1, (uintptr_t)h); }

int ckpt_predef_bind(const uint64_t *lower, unsigned n)
{
	if (n != ckpt_predef_count)
		return -1;
	rev = calloc(n, sizeof *rev);
	fwd = calloc(n, sizeof *fwd);
	if (!rev || !fwd)
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
		rev[nrev].lower = fwd[nrev].lower = lower[i];
		rev[nrev].upper = fwd[nrev].upper = (uintptr_t)canon;
		if ((uintptr_t)canon < ckpt_predef_min)
			ckpt_predef_min = (uintptr_t)canon;
		if ((uintptr_t)canon > ckpt_predef_max)
			ckpt_predef_max = (uintptr_t)canon;
		nrev++;
	}
	qsort(rev, nrev, sizeof *rev, by_lower);
	qsort(fwd, nrev, sizeof *fwd, by_upper);
	return 0;
}

void *ckpt_vh_out_ptr(void *h) { return find(rev, nrev, 0, (uintptr_t)h); }
