/* The creation log and the summary (shadow_log.h). */
#include "ibshadow/shadow_log.h"
#include "ibshadow/summary.h"
#include "ibshadow/sdev.h"
#include "core/link.h"
#include "pmpi/link_find.h"

_Static_assert(sizeof(struct sdev_range) == sizeof(struct ibshadow_range), "one layout");

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ibshadow/shadow_ckpt.h"
#include "ibshadow/shadow_section.h"

struct shl_entry {
	enum shl_change what;
	size_t len;
	struct shl_entry *next;
	unsigned char args[];
};

struct shl_rec {
	uint64_t seq;
	enum shl_kind kind;
	void *obj;
	struct shl_rec *parent;
	struct shl_rec *prev, *next;
	struct shl_entry *changes, **changes_tail;
	unsigned nchanges;
	int unsupported; /* counted in the summary's `unsupported` */
	char desc[96];
	size_t len;
	unsigned char args[];
};

static struct shl_rec *head, *tail;
static uint64_t seq;
static unsigned live;
static struct ibshadow_summary fallback;
static struct ibshadow_summary *sump;
#define summary (*sump)
static int published;

/* the summary on its page at the fixed address (summary.h), else here (a
 * checkpoint is then refused: a restart could not find it) */
static void summary_place(void)
{
	void *p;
	if (sump)
		return;
	p = mmap((void *)(uintptr_t)IBSHADOW_SUMMARY_ADDR, 4096, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == (void *)(uintptr_t)IBSHADOW_SUMMARY_ADDR) {
		sump = p;
		sump->at_fixed = 1;
	} else {
		if (p != MAP_FAILED)
			munmap(p, 4096);
		sump = &fallback;
	}
	sump->magic = IBSHADOW_SUMMARY_MAGIC;
	sump->section_tls_off = ibs_section_offset();
	sump->cut = (uint64_t)(uintptr_t)shadow_ckpt_cut;
	sump->cut_done = (uint64_t)(uintptr_t)shadow_ckpt_cut_done;
	sump->restart = (uint64_t)(uintptr_t)shadow_ckpt_restart;
}

static void publish(void)
{
	struct ckptmpi_link *l;
	summary_place();
	summary.live = live;
	if (!summary.dev_dir[0])
		snprintf(summary.dev_dir, sizeof summary.dev_dir, "%s", sdev_dir());
	if (!summary.dev_maps) {
		int n;
		const struct sdev_range *t = sdev_mapping_table(&n);
		if (t) {
			summary.dev_nmaps = (uint32_t)n;
			summary.dev_maps = (uint64_t)(uintptr_t)t;
		}
	}
	if (head)
		snprintf(summary.oldest, sizeof summary.oldest, "%s on %s", head->desc, SDEV_NAME);
	else
		summary.oldest[0] = 0;
	if (!published) {
		published = 1;
		l = ckpt_find_link();
		if (l)
			l->verbs_summary = (uint64_t)(uintptr_t)&summary;
	}
}

struct shl_rec *shl_create(enum shl_kind kind, void *obj, struct shl_rec *parent,
                           const void *args, size_t len)
{
	struct shl_rec *r = calloc(1, sizeof *r + len);
	if (!r)
		return NULL;
	r->seq = ++seq;
	r->kind = kind;
	r->obj = obj;
	r->parent = parent;
	r->len = len;
	if (len)
		memcpy(r->args, args, len);
	r->changes_tail = &r->changes;
	r->prev = tail;
	if (tail)
		tail->next = r;
	else
		head = r;
	tail = r;
	live++;
	publish();
	return r;
}

void shl_change(struct shl_rec *r, enum shl_change what, const void *args, size_t len)
{
	struct shl_entry *e;
	if (!r)
		return;
	e = malloc(sizeof *e + len);
	if (!e)
		return;
	e->what = what;
	e->len = len;
	e->next = NULL;
	memcpy(e->args, args, len);
	*r->changes_tail = e;
	r->changes_tail = &e->next;
	r->nchanges++;
}

void shl_destroy(struct shl_rec *r)
{
	struct shl_entry *e, *n;
	if (!r)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		tail = r->prev;
	for (e = r->changes; e; e = n) {
		n = e->next;
		free(e);
	}
	if (r->unsupported)
		summary.unsupported--;
	free(r);
	live--;
	publish();
}

void shl_describe(struct shl_rec *r, const char *fmt, ...)
{
	va_list ap;
	if (!r)
		return;
	va_start(ap, fmt);
	vsnprintf(r->desc, sizeof r->desc, fmt, ap);
	va_end(ap);
	if (r == head)
		publish();
}

struct shl_rec *shl_first(void) { return head; }
struct shl_rec *shl_next(struct shl_rec *r) { return r ? r->next : NULL; }
enum shl_kind shl_kind_of(const struct shl_rec *r) { return r->kind; }
unsigned shl_live(void) { return live; }

unsigned shl_children(const struct shl_rec *r)
{
	unsigned n = 0;
	for (struct shl_rec *c = r ? r->next : NULL; c; c = c->next)
		n += c->parent == r;
	return n;
}

void shl_reparent(struct shl_rec *r, struct shl_rec *parent)
{
	if (r)
		r->parent = parent;
}

void shl_mark_unsupported(struct shl_rec *r, const char *why)
{
	if (!r || r->unsupported)
		return;
	r->unsupported = 1;
	if (!summary.unsupported++)
		snprintf(summary.unsupported_desc, sizeof summary.unsupported_desc, "%s", why);
}

void *shl_obj(const struct shl_rec *r) { return r->obj; }
struct shl_rec *shl_parent(const struct shl_rec *r) { return r->parent; }
const void *shl_args(const struct shl_rec *r, size_t *len)
{
	if (len)
		*len = r->len;
	return r->args;
}
const char *shl_desc(const struct shl_rec *r) { return r->desc; }

const struct shl_entry *shl_changes(const struct shl_rec *r) { return r->changes; }
const struct shl_entry *shl_change_next(const struct shl_entry *e) { return e->next; }
enum shl_change shl_change_what(const struct shl_entry *e) { return e->what; }
const void *shl_change_args(const struct shl_entry *e, size_t *len)
{
	if (len)
		*len = e->len;
	return e->args;
}
