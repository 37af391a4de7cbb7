/* Translation tables (shadow_xlate.h). */
#include "ibshadow/shadow_xlate.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CACHE 1024

struct ent {
	uint64_t key; /* (peer << 32 | value) + 1; 0: empty */
	uint32_t val;
	uint32_t dead;
};

struct table {
	uint32_t cap, n;
	struct ent e[];
};

struct dir {
	_Atomic(struct table *) t;
	/* (low 32 bits of the key) << 32 | value, written by the writer only;
	 * used for the local directions, whose keys are 32-bit */
	_Atomic uint64_t cache[CACHE];
	int cached;
};

/* [local to-dev, local to-virt, remote to-dev, remote to-virt] per kind */
static struct dir dirs[4][XL_NKINDS] = {
	[0] = {[0 ... XL_NKINDS - 1] = {.cached = 1}},
	[1] = {[0 ... XL_NKINDS - 1] = {.cached = 1}},
};

_Atomic unsigned xl_nonidentity;

static inline uint32_t hash(uint64_t k) { return (uint32_t)((k * 0x9e3779b97f4a7c15ull) >> 40); }

static int lookup(struct dir *d, uint64_t key, uint32_t *out)
{
	struct table *t;
	if (d->cached) {
		uint64_t c = atomic_load_explicit(&d->cache[hash(key) & (CACHE - 1)], memory_order_relaxed);
		if ((uint32_t)(c >> 32) == (uint32_t)key && c) {
			*out = (uint32_t)c;
			return 1;
		}
	}
	t = atomic_load_explicit(&d->t, memory_order_acquire);
	if (!t)
		return 0;
	for (uint32_t i = hash(key) & (t->cap - 1), n = 0; n < t->cap; i = (i + 1) & (t->cap - 1), n++) {
		if (!t->e[i].key)
			return 0;
		if (t->e[i].key == key && !t->e[i].dead) {
			*out = t->e[i].val;
			return 1;
		}
	}
	return 0;
}

static void insert(struct dir *d, uint64_t key, uint32_t val)
{
	struct table *t = atomic_load(&d->t), *nt;
	if (!t || (t->n + 1) * 2 > t->cap) {
		uint32_t cap = t ? t->cap * 2 : 256;
		/* mmap, not malloc: a restart fills the tables from the
		 * runtime's thread, where the program's malloc may be held by a
		 * parked thread (shadow_ckpt.c) */
		nt = mmap(NULL, sizeof *nt + cap * sizeof(struct ent), PROT_READ | PROT_WRITE,
		          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (nt == MAP_FAILED)
			return;
		nt->cap = cap;
		for (uint32_t i = 0; t && i < t->cap; i++)
			if (t->e[i].key && !t->e[i].dead) {
				uint32_t j = hash(t->e[i].key) & (cap - 1);
				while (nt->e[j].key)
					j = (j + 1) & (cap - 1);
				nt->e[j] = t->e[i];
				nt->n++;
			}
		/* readers may still walk the old table: it is left allocated */
		atomic_store_explicit(&d->t, nt, memory_order_release);
		t = nt;
	}
	/* the value a key stands for is its low 32 bits (the id; the peer
	 * above): the identity when it maps to itself */
	if (val != (uint32_t)(key - 1))
		atomic_fetch_add(&xl_nonidentity, 1);
	for (uint32_t i = hash(key) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		if (t->e[i].key == key) {
			if (!t->e[i].dead && t->e[i].val != (uint32_t)(key - 1))
				atomic_fetch_sub(&xl_nonidentity, 1);
			t->e[i].val = val;
			t->e[i].dead = 0;
			break;
		}
		if (!t->e[i].key) {
			t->e[i].val = val;
			t->e[i].key = key;
			t->n++;
			break;
		}
	}
	if (d->cached)
		atomic_store(&d->cache[hash(key) & (CACHE - 1)], (uint64_t)(uint32_t)key << 32 | val);
}

static void erase(struct dir *d, uint64_t key)
{
	struct table *t = atomic_load(&d->t);
	uint64_t c = d->cached ? atomic_load(&d->cache[hash(key) & (CACHE - 1)]) : 0;
	if (c && (uint32_t)(c >> 32) == (uint32_t)key)
		atomic_store(&d->cache[hash(key) & (CACHE - 1)], 0);
	if (!t)
		return;
	for (uint32_t i = hash(key) & (t->cap - 1), n = 0; n < t->cap; i = (i + 1) & (t->cap - 1), n++) {
		if (!t->e[i].key)
			return;
		if (t->e[i].key == key && !t->e[i].dead) {
			t->e[i].dead = 1;
			if (t->e[i].val != (uint32_t)(key - 1))
				atomic_fetch_sub(&xl_nonidentity, 1);
		}
	}
}

void xl_add(enum xl_kind k, uint32_t virt, uint32_t dev)
{
	insert(&dirs[0][k], (uint64_t)virt + 1, dev);
	insert(&dirs[1][k], (uint64_t)dev + 1, virt);
}

void xl_del(enum xl_kind k, uint32_t virt)
{
	uint32_t dev;
	if (lookup(&dirs[0][k], (uint64_t)virt + 1, &dev))
		erase(&dirs[1][k], (uint64_t)dev + 1);
	erase(&dirs[0][k], (uint64_t)virt + 1);
}

uint32_t xl_to_dev(enum xl_kind k, uint32_t virt)
{
	uint32_t v;
	return lookup(&dirs[0][k], (uint64_t)virt + 1, &v) ? v : virt;
}

uint32_t xl_to_virt(enum xl_kind k, uint32_t dev)
{
	uint32_t v;
	return lookup(&dirs[1][k], (uint64_t)dev + 1, &v) ? v : dev;
}

void xl_remote_add(enum xl_kind k, uint16_t peer, uint32_t virt, uint32_t dev)
{
	/* device QP and SRQ numbers are unique on the device: their reverse
	 * needs no peer */
	uint16_t rpeer = k == XL_QPN || k == XL_SRQN ? 0 : peer;
	insert(&dirs[2][k], ((uint64_t)peer << 32 | virt) + 1, dev);
	insert(&dirs[3][k], ((uint64_t)rpeer << 32 | dev) + 1, virt);
}

/* A restart: every translation of the run before is void (new device
 * values); the tables start empty. The old tables stay allocated (a
 * reader of the run before cannot exist: every thread was parked). */
void xl_reset(void)
{
	for (int d = 0; d < 4; d++)
		for (int k = 0; k < XL_NKINDS; k++) {
			atomic_store(&dirs[d][k].t, NULL);
			for (int c = 0; c < CACHE; c++)
				atomic_store(&dirs[d][k].cache[c], 0);
		}
	atomic_store(&xl_nonidentity, 0);
}

uint32_t xl_remote(enum xl_kind k, uint16_t peer, uint32_t virt)
{
	uint32_t v;
	if (!atomic_load_explicit(&dirs[2][k].t, memory_order_relaxed))
		return virt; /* nothing but identity yet */
	return lookup(&dirs[2][k], ((uint64_t)peer << 32 | virt) + 1, &v) ? v : virt;
}

uint32_t xl_remote_virt(enum xl_kind k, uint16_t peer, uint32_t dev)
{
	uint32_t v;
	if (!atomic_load_explicit(&dirs[3][k].t, memory_order_relaxed))
		return dev;
	return lookup(&dirs[3][k], ((uint64_t)peer << 32 | dev) + 1, &v) ? v : dev;
}
