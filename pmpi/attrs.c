/* Upper half: attribute caching on communicators and datatypes, kept by
 * the shim itself rather than by the real MPI, so attributes live in the
 * application's memory and survive a restart with it (the real MPI's
 * objects are re-created empty). Callbacks run directly, in the caller's
 * thread and context. Predefined attributes (MPI_TAG_UB, ...) still come
 * from the real MPI. */
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "pmpi/call.h"
#include "pmpi/mpi_fntypes.h"
#include "pmpi/mpi_index.h"
#include "pmpi/upper_special.h"

#define KEYVAL_BASE 0x3c000000 /* no MPI's predefined keyval looks like these */
#define MAX_KEYVALS 4096

typedef int (*copy_fn_t)(uint64_t obj, int key, void *extra, void *in, void *out, int *flag);
typedef int (*delete_fn_t)(uint64_t obj, int key, void *val, void *extra);

struct keyval {
	int used, freed, kind; /* kind: CKPT_VK_COMM or CKPT_VK_DATATYPE */
	copy_fn_t copy;
	delete_fn_t del;
	void *extra;
};
struct attr {
	uint64_t obj; /* the application's handle */
	int key;
	void *val;
	uint64_t seq; /* when it was set: deleted last-set-first */
};

static struct keyval keyvals[MAX_KEYVALS];
static int n_keyvals;
static struct attr *attrs;
static size_t n_attrs, cap_attrs;
static uint64_t attr_seq;
static volatile int lock;

static void take(void)
{
	while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
}
static void give(void) { __atomic_store_n(&lock, 0, __ATOMIC_RELEASE); }

static struct keyval *ours(int key)
{
	int i = key - KEYVAL_BASE;
	return i >= 0 && i < n_keyvals && keyvals[i].used ? &keyvals[i] : NULL;
}

static int create_keyval(int kind, void *copy, void *del, int *key, void *extra)
{
	take();
	if (n_keyvals == MAX_KEYVALS) {
		give();
		return MPI_ERR_KEYVAL;
	}
	keyvals[n_keyvals] = (struct keyval){1, 0, kind, (copy_fn_t)copy, (delete_fn_t)del, extra};
	*key = KEYVAL_BASE + n_keyvals++;
	give();
	return MPI_SUCCESS;
}

static struct attr *find(uint64_t obj, int key)
{
	for (size_t i = 0; i < n_attrs; i++)
		if (attrs[i].obj == obj && attrs[i].key == key)
			return &attrs[i];
	return NULL;
}

static int set_attr(uint64_t obj, int key, void *val)
{
	struct keyval *k = ours(key);
	struct attr *a;
	take();
	a = find(obj, key);
	if (a && k && k->del) {
		/* the old value is deleted first; its callback's error is the call's */
		void *old = a->val;
		int rc;
		give();
		rc = k->del(obj, key, old, k->extra);
		if (rc != MPI_SUCCESS)
			return rc;
		take();
		a = find(obj, key);
	}
	if (!a) {
		if (n_attrs == cap_attrs) {
			size_t nc = cap_attrs ? 2 * cap_attrs : 64;
			struct attr *na = realloc(attrs, nc * sizeof *na);
			if (!na) {
				give();
				return MPI_ERR_NO_MEM;
			}
			attrs = na;
			cap_attrs = nc;
		}
		a = &attrs[n_attrs++];
		a->obj = obj;
		a->key = key;
	}
	a->val = val;
	a->seq = ++attr_seq;
	give();
	return MPI_SUCCESS;
}

/* remove (obj, key), calling its delete callback first: when that fails,
 * the attribute stays and the call returns the callback's error */
static int delete_attr(uint64_t obj, int key)
{
	struct keyval *k = ours(key);
	struct attr *a;
	void *val;
	int rc = MPI_SUCCESS;

	take();
	a = find(obj, key);
	if (!a) {
		give();
		return MPI_ERR_KEYVAL;
	}
	val = a->val;
	give();
	if (k && k->del)
		rc = k->del(obj, key, val, k->extra);
	if (rc != MPI_SUCCESS)
		return rc;
	take();
	a = find(obj, key);
	if (a)
		*a = attrs[--n_attrs];
	give();
	return MPI_SUCCESS;
}

/* ---- hooks of the generated wrappers (tags in mpi_functions.def) ---- */

/* a dup: the copy callbacks decide what the new object gets; the first
 * error of a callback is the dup's (the caller frees the new object) */
int ckpt_attr_copy_rc(uint64_t from, uint64_t to)
{
	size_t n;
	struct attr *snap;
	int rc = MPI_SUCCESS;

	take();
	n = n_attrs;
	snap = malloc((n ? n : 1) * sizeof *snap);
	if (snap)
		memcpy(snap, attrs, n * sizeof *snap);
	give();
	for (size_t i = 0; snap && i < n; i++) {
		struct keyval *k = ours(snap[i].key);
		void *out = NULL;
		int flag = 0;
		if (snap[i].obj != from || !k || !k->copy)
			continue;
		rc = k->copy(from, snap[i].key, k->extra, snap[i].val, &out, &flag);
		if (rc != MPI_SUCCESS)
			break;
		if (flag)
			set_attr(to, snap[i].key, out);
	}
	free(snap);
	return snap ? rc : MPI_ERR_NO_MEM;
}

void ckpt_attr_copied(uint64_t from, uint64_t to) { (void)ckpt_attr_copy_rc(from, to); }

/* a free: every attribute's delete callback, last set first (MPI-3.1
 * 8.7.1 asks it of MPI_COMM_SELF at MPI_Finalize), then gone; the first
 * callback that fails stops it and its error is the free's */
int ckpt_attr_freeing_rc(uint64_t obj)
{
	for (;;) {
		int key = -1, rc;
		uint64_t best = 0;
		take();
		for (size_t i = 0; i < n_attrs; i++)
			if (attrs[i].obj == obj && attrs[i].seq >= best) {
				key = attrs[i].key;
				best = attrs[i].seq;
			}
		give();
		if (key < 0)
			return MPI_SUCCESS;
		rc = delete_attr(obj, key);
		if (rc != MPI_SUCCESS)
			return rc;
	}
}

void ckpt_attr_freeing(uint64_t obj) { (void)ckpt_attr_freeing_rc(obj); }

/* ---- the calls ---- */

static int get_attr(uint64_t obj, int key, void *val, int *flag)
{
	struct attr *a;
	take();
	a = find(obj, key);
	*flag = a != NULL;
	if (a)
		*(void **)val = a->val;
	give();
	return MPI_SUCCESS;
}

static int free_keyval(int *key)
{
	struct keyval *k = ours(*key);
	if (!k)
		return MPI_ERR_KEYVAL;
	k->freed = 1; /* attributes that use it stay until deleted */
	*key = MPI_KEYVAL_INVALID;
	return MPI_SUCCESS;
}

int PMPI_Comm_create_keyval(MPI_Comm_copy_attr_function *copy, MPI_Comm_delete_attr_function *del,
                            int *key, void *extra)
{
	return create_keyval(CKPT_VK_COMM, (void *)copy, (void *)del, key, extra);
}

int PMPI_Type_create_keyval(MPI_Type_copy_attr_function *copy, MPI_Type_delete_attr_function *del,
                            int *key, void *extra)
{
	return create_keyval(CKPT_VK_DATATYPE, (void *)copy, (void *)del, key, extra);
}

int PMPI_Keyval_create(MPI_Copy_function *copy, MPI_Delete_function *del, int *key, void *extra)
{
	return create_keyval(CKPT_VK_COMM, (void *)copy, (void *)del, key, extra);
}

int PMPI_Comm_free_keyval(int *key) { return free_keyval(key); }
int PMPI_Type_free_keyval(int *key) { return free_keyval(key); }
int PMPI_Keyval_free(int *key) { return free_keyval(key); }

int PMPI_Comm_set_attr(MPI_Comm comm, int key, void *val)
{
	if (!ours(key))
		return CKPT_CALL(CKPT_MPI_MPI_Comm_set_attr, ckpt_fn_MPI_Comm_set_attr,
		                 CKPT_VH_IN(Comm, comm), key, val);
	return set_attr(CKPT_HVAL(comm), key, val);
}

int PMPI_Comm_get_attr(MPI_Comm comm, int key, void *val, int *flag)
{
	if (!ours(key))
		return CKPT_CALL(CKPT_MPI_MPI_Comm_get_attr, ckpt_fn_MPI_Comm_get_attr,
		                 CKPT_VH_IN(Comm, comm), key, val, flag);
	return get_attr(CKPT_HVAL(comm), key, val, flag);
}

int PMPI_Comm_delete_attr(MPI_Comm comm, int key)
{
	if (!ours(key))
		return CKPT_CALL(CKPT_MPI_MPI_Comm_delete_attr, ckpt_fn_MPI_Comm_delete_attr,
		                 CKPT_VH_IN(Comm, comm), key);
	return delete_attr(CKPT_HVAL(comm), key);
}

int PMPI_Type_set_attr(MPI_Datatype t, int key, void *val)
{
	if (!ours(key))
		return CKPT_CALL(CKPT_MPI_MPI_Type_set_attr, ckpt_fn_MPI_Type_set_attr,
		                 CKPT_VH_IN(Datatype, t), key, val);
	return set_attr(CKPT_HVAL(t), key, val);
}

int PMPI_Type_get_attr(MPI_Datatype t, int key, void *val, int *flag)
{
	if (!ours(key))
		return CKPT_CALL(CKPT_MPI_MPI_Type_get_attr, ckpt_fn_MPI_Type_get_attr,
		                 CKPT_VH_IN(Datatype, t), key, val, flag);
	return get_attr(CKPT_HVAL(t), key, val, flag);
}

int PMPI_Type_delete_attr(MPI_Datatype t, int key)
{
	if (!ours(key))
		return CKPT_CALL(CKPT_MPI_MPI_Type_delete_attr, ckpt_fn_MPI_Type_delete_attr,
		                 CKPT_VH_IN(Datatype, t), key);
	return delete_attr(CKPT_HVAL(t), key);
}

/* MPI-1 names (deprecated): attr_val of MPI_Attr_put is the value itself */
int PMPI_Attr_put(MPI_Comm comm, int key, void *val) { return PMPI_Comm_set_attr(comm, key, val); }
int PMPI_Attr_get(MPI_Comm comm, int key, void *val, int *flag)
{
	return PMPI_Comm_get_attr(comm, key, val, flag);
}
int PMPI_Attr_delete(MPI_Comm comm, int key) { return PMPI_Comm_delete_attr(comm, key); }

#pragma weak MPI_Comm_create_keyval = PMPI_Comm_create_keyval
#pragma weak MPI_Type_create_keyval = PMPI_Type_create_keyval
#pragma weak MPI_Keyval_create = PMPI_Keyval_create
#pragma weak MPI_Comm_free_keyval = PMPI_Comm_free_keyval
#pragma weak MPI_Type_free_keyval = PMPI_Type_free_keyval
#pragma weak MPI_Keyval_free = PMPI_Keyval_free
#pragma weak MPI_Comm_set_attr = PMPI_Comm_set_attr
#pragma weak MPI_Comm_get_attr = PMPI_Comm_get_attr
#pragma weak MPI_Comm_delete_attr = PMPI_Comm_delete_attr
#pragma weak MPI_Type_set_attr = PMPI_Type_set_attr
#pragma weak MPI_Type_get_attr = PMPI_Type_get_attr
#pragma weak MPI_Type_delete_attr = PMPI_Type_delete_attr
#pragma weak MPI_Attr_put = PMPI_Attr_put
#pragma weak MPI_Attr_get = PMPI_Attr_get
#pragma weak MPI_Attr_delete = PMPI_Attr_delete
