/* The software device's shared memory: the per-user directory, the
 * registry of processes, each process's segment, locks a dead holder
 * cannot keep, views of peers' segments, the device's description. The
 * state lives only in mmaps (the registry, segments, one private arena). */
#include "ibshadow/sdev_int.h"
#include "ibshadow/iblog.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <pthread.h>

/* what only this process needs, in a private mapping */
struct sd_priv {
	int dirfd;
	int async_fd;
	int refs;
	struct sd_view views[SD_MAX_PROCS];
	/* FIFOs of peers' channels we signalled: [slot][chan+1] */
	struct {
		pid_t pid;
		int fd;
	} fifo[SD_MAX_PROCS][SD_MAX_CHAN + 1];
	int chan_fd[SD_MAX_CHAN];
	/* every mapping of the device: [0] this arena, [1] the registry,
	 * [2 + slot] the segment of a slot (ours or a peer's); len 0: none */
	struct sdev_range ranges[2 + SD_MAX_PROCS];
};

static struct sd_priv *P;
struct sd_view *sd_self;
struct sd_reg *sd_registry;
static pthread_mutex_t open_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t view_mutex = PTHREAD_MUTEX_INITIALIZER;

uint64_t sd_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

/* getpid() is a system call: this process's pid, refreshed in a child */
static int32_t my_pid;
static void pid_reset(void) { my_pid = (int32_t)getpid(); }
static void pid_once(void)
{
	pthread_atfork(NULL, NULL, pid_reset);
	pid_reset();
}
static inline int32_t me_pid(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	if (__builtin_expect(!my_pid, 0))
		pthread_once(&once, pid_once);
	return my_pid;
}

void sd_lock(struct sd_lock *l)
{
	int32_t me = me_pid(), zero;
	unsigned spins = 0;

	for (;;) {
		zero = 0;
		if (atomic_compare_exchange_weak_explicit(&l->pid, &zero, me, memory_order_acquire,
		                                          memory_order_relaxed))
			return;
		if (++spins % 64 == 0)
			sched_yield();
		if (spins % 4096 == 0 && zero && !pid_alive(zero)) {
			/* the holder died: take the lock over */
			if (atomic_compare_exchange_strong(&l->pid, &zero, me)) {
				iblog(2, "sdev: broke a lock held by dead process %d", zero);
				return;
			}
		}
	}
}

int sd_trylock(struct sd_lock *l)
{
	int32_t zero = 0;
	return atomic_compare_exchange_strong_explicit(&l->pid, &zero, me_pid(), memory_order_acquire,
	                                               memory_order_relaxed);
}

void sd_unlock(struct sd_lock *l)
{
	atomic_store_explicit(&l->pid, 0, memory_order_release);
}

static uint64_t starttime_of(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* field 3 starts after ") "; starttime is field 22 */
	for (field = 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	sscanf(p, "%llu", &st);
	return st;
}

static int proc_alive(pid_t pid, uint64_t st)
{
	return pid > 0 && starttime_of(pid) == st;
}

int sd_view_alive(struct sd_view *v)
{
	if (v->dead)
		return 0;
	if (v == sd_self)
		return 1;
	if (atomic_load_explicit(&sd_registry->proc[v->slot].pid, memory_order_relaxed) != v->pid ||
	    !pid_alive(v->pid)) {
		v->dead = 1;
		return 0;
	}
	return 1;
}

static void set_range(int i, void *p, uint64_t len)
{
	P->ranges[i].start = (uint64_t)p;
	P->ranges[i].len = len;
}

int sdev_mappings(struct sdev_range *out, int max)
{
	int n = 0;
	if (!P)
		return 0;
	for (int i = 0; i < 2 + SD_MAX_PROCS && n < max; i++)
		if (P->ranges[i].len)
			out[n++] = P->ranges[i];
	return n;
}

const struct sdev_range *sdev_mapping_table(int *n)
{
	*n = 2 + SD_MAX_PROCS;
	return P ? P->ranges : NULL;
}

static char dir_path[256];
const char *sdev_dir(void) { return dir_path; }

static int open_dir(void)
{
	char *path = dir_path;
	const size_t pathlen = sizeof dir_path;
	const char *env = getenv("CKPTMPI_SDEV_DIR");
	struct stat st;
	int fd;

	if (env && *env)
		snprintf(path, pathlen, "%s", env);
	else
		snprintf(path, pathlen, "/dev/shm/ckptmpi-sdev-%u", (unsigned)getuid());
	if (mkdir(path, 0700) && errno != EEXIST) {
		iblog(0, "sdev: %s: cannot create the device directory: %s", path, strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		iblog(0, "sdev: %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || st.st_uid != getuid() || (st.st_mode & 077)) {
		iblog(0, "sdev: %s: refused: not owned by uid %u or open to others (mode %o)", path,
		      (unsigned)getuid(), (unsigned)(st.st_mode & 07777));
		close(fd);
		errno = EACCES;
		return -1;
	}
	return fd;
}

/* a file of the directory, ours, mapped shared */
static void *map_file(const char *name, uint64_t size, int create, int *created)
{
	struct stat st;
	void *p;
	int fd = -1;

	if (created)
		*created = 0;
	if (create) {
		fd = openat(P->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 && created)
			*created = 1;
		if (fd < 0 && errno != EEXIST)
			return NULL;
	}
	if (fd < 0)
		fd = openat(P->dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || st.st_uid != getuid() || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077)) {
		close(fd);
		errno = EACCES;
		return NULL;
	}
	if ((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static void unlink_prefix(const char *prefix)
{
	int fd = dup(P->dirfd);
	DIR *d;
	struct dirent *e;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	rewinddir(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			unlinkat(P->dirfd, e->d_name, 0);
	closedir(d);
}

void sd_cleanup_slot(uint32_t slot)
{
	char name[64];
	snprintf(name, sizeof name, "seg-%u", slot);
	unlinkat(P->dirfd, name, 0);
	snprintf(name, sizeof name, "as-%u", slot);
	unlinkat(P->dirfd, name, 0);
	snprintf(name, sizeof name, "ch-%u-", slot);
	unlink_prefix(name);
}

struct sd_view *sd_view_of(uint32_t slot)
{
	struct sd_view *v;
	pid_t pid;
	char name[64];
	struct sd_seg *seg;

	if (slot == 0 || slot >= SD_MAX_PROCS)
		return NULL;
	v = &P->views[slot];
	pid = atomic_load_explicit(&sd_registry->proc[slot].pid, memory_order_acquire);
	if (v->seg && v->pid == pid && pid)
		return v;
	if (v == sd_self)
		return v;
	pthread_mutex_lock(&view_mutex);
	if (v->seg && v->pid != pid) {
		set_range(2 + (int)slot, NULL, 0);
		munmap(v->seg, SD_SEG_SIZE);
		v->seg = NULL;
	}
	if (!v->seg && pid) {
		snprintf(name, sizeof name, "seg-%u", slot);
		seg = map_file(name, SD_SEG_SIZE, 0, NULL);
		if (seg && (seg->magic != SD_SEG_MAGIC || seg->pid != pid)) {
			munmap(seg, SD_SEG_SIZE);
			seg = NULL;
		}
		if (seg) {
			v->pid = pid;
			v->slot = slot;
			v->gen = sd_registry->proc[slot].gen;
			v->dead = 0;
			v->ops = 0;
			v->seg = seg;
			set_range(2 + (int)slot, seg, SD_SEG_SIZE);
			iblog(3, "sdev: mapped the segment of process %d (slot %u)", pid, slot);
		}
	}
	pthread_mutex_unlock(&view_mutex);
	return v->seg ? v : NULL;
}

/* ------------------------------------------------------------ allocation */
static int size_class(uint64_t len)
{
	int k = 6;
	while ((1ull << k) < len)
		k++;
	return k;
}

uint64_t sd_seg_alloc(uint64_t len)
{
	struct sd_seg *s = sd_self->seg;
	int k = size_class(len);
	uint64_t off;

	sd_lock(&s->mlock);
	off = s->freelist[k];
	if (off) {
		s->freelist[k] = *(uint64_t *)((char *)s + off);
	} else {
		off = (s->bump + (1ull << (k < 12 ? k : 12)) - 1) & ~((1ull << (k < 12 ? k : 12)) - 1);
		if (off + (1ull << k) > SD_SEG_SIZE) {
			sd_unlock(&s->mlock);
			return 0;
		}
		s->bump = off + (1ull << k);
	}
	sd_unlock(&s->mlock);
	memset((char *)s + off, 0, 1ull << k);
	return off;
}

void sd_seg_free(uint64_t off, uint64_t len)
{
	struct sd_seg *s = sd_self->seg;
	int k = size_class(len);
	if (!off)
		return;
	/* give big blocks' pages back */
	if (k >= 16)
		madvise((char *)s + off, 1ull << k, MADV_REMOVE);
	sd_lock(&s->mlock);
	*(uint64_t *)((char *)s + off) = s->freelist[k];
	s->freelist[k] = off;
	sd_unlock(&s->mlock);
}

/* ids (generation and slot: the process part of a QP number) the next
 * open must not take: a restarted job's virtual QP numbers */
static uint16_t forbid[4096];
static int n_forbid;

void sdev_forbid_ids(const uint16_t *ids, int n)
{
	n_forbid = 0;
	for (int i = 0; i < n && n_forbid < 4096; i++)
		forbid[n_forbid++] = ids[i];
}

/* ------------------------------------------------------------ open/close */
int sdev_open(void)
{
	int created, slot = -1;
	pid_t me = getpid();
	uint64_t st;
	char name[64];

	pthread_mutex_lock(&open_mutex);
	if (P && P->refs && sd_self && sd_self->pid != me) {
		/* a child of a process using the device: its own slot; the
		 * parent's mappings and files are the parent's */
		for (int s = 0; s < SD_MAX_PROCS; s++) {
			P->views[s].seg = NULL;
			P->views[s].pid = 0;
			for (int c = 0; c <= SD_MAX_CHAN; c++)
				P->fifo[s][c].pid = 0;
		}
		for (int i = 1; i < 2 + SD_MAX_PROCS; i++)
			set_range(i, NULL, 0);
		for (int i = 0; i < SD_MAX_CHAN; i++)
			P->chan_fd[i] = -1;
		if (P->dirfd >= 0)
			close(P->dirfd);
		P->dirfd = -1;
		P->refs = 0;
		sd_self = NULL;
		sd_registry = NULL;
		pid_reset();
	}
	if (P && P->refs) {
		P->refs++;
		pthread_mutex_unlock(&open_mutex);
		return P->async_fd;
	}
	if (!P) {
		void *m = mmap(NULL, sizeof *P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		               -1, 0);
		if (m == MAP_FAILED)
			goto fail_unlocked;
		P = m;
		P->dirfd = -1;
		set_range(0, P, sizeof *P);
		for (int i = 0; i < SD_MAX_CHAN; i++)
			P->chan_fd[i] = -1;
	}
	P->dirfd = open_dir();
	if (P->dirfd < 0)
		goto fail;
	if (!sd_registry) {
		sd_registry = map_file("registry", sizeof(struct sd_reg), 1, &created);
		if (!sd_registry) {
			iblog(0, "sdev: cannot map the device registry: %s", strerror(errno));
			goto fail;
		}
		set_range(1, sd_registry, sizeof(struct sd_reg));
	}
	st = starttime_of(me);
	sd_lock(&sd_registry->lock);
	sd_registry->magic = SD_REG_MAGIC;
	for (int s = 1; s < SD_MAX_PROCS; s++) {
		pid_t pid = sd_registry->proc[s].pid;
		if (pid && !proc_alive(pid, sd_registry->proc[s].starttime)) {
			iblog(2, "sdev: removing the leftovers of dead process %d (slot %d)", pid, s);
			sd_cleanup_slot((uint32_t)s);
			sd_registry->proc[s].pid = 0;
			pid = 0;
		}
		if (!pid && slot < 0)
			slot = s;
	}
	if (slot < 0) {
		sd_unlock(&sd_registry->lock);
		iblog(0, "sdev: %d processes use the device already", SD_MAX_PROCS - 1);
		errno = EAGAIN;
		goto fail;
	}
	sd_cleanup_slot((uint32_t)slot);
	snprintf(name, sizeof name, "seg-%d", slot);
	{
		struct sd_seg *seg = map_file(name, SD_SEG_SIZE, 1, &created);
		if (!seg) {
			sd_unlock(&sd_registry->lock);
			iblog(0, "sdev: cannot create the segment %s: %s", name, strerror(errno));
			goto fail;
		}
		seg->pid = me;
		seg->slot = (uint32_t)slot;
		seg->starttime = st;
		seg->bump = (sizeof *seg + 4095) & ~4095ull;
		seg->next_pd = 1;
		seg->magic = SD_SEG_MAGIC;
		sd_self = &P->views[slot];
		sd_self->seg = seg;
		sd_self->pid = me;
		sd_self->slot = (uint32_t)slot;
		sd_self->dead = 0;
		set_range(2 + slot, seg, SD_SEG_SIZE);
	}
	snprintf(name, sizeof name, "as-%d", slot);
	if (mkfifoat(P->dirfd, name, 0600) ||
	    (P->async_fd = openat(P->dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		sd_unlock(&sd_registry->lock);
		iblog(0, "sdev: cannot create the async event FIFO: %s", strerror(errno));
		goto fail;
	}
	/* a generation whose QP numbers no restarted job still uses as its
	 * virtual ones (sdev_forbid_ids) */
	for (int n = 0; n < 16; n++) {
		uint32_t id;
		int bad = 0;
		sd_registry->proc[slot].gen++;
		id = (sd_registry->proc[slot].gen & 0xf) << 8 | (uint32_t)slot;
		for (int k = 0; k < n_forbid && !bad; k++)
			bad = forbid[k] == id;
		if (!bad)
			break;
	}
	n_forbid = 0;
	sd_registry->proc[slot].starttime = st;
	sd_self->gen = sd_registry->proc[slot].gen;
	atomic_store(&sd_registry->proc[slot].pid, me);
	sd_unlock(&sd_registry->lock);
	P->refs = 1;
	iblog(1, "sdev: %s opened (slot %d, process %d)", SDEV_NAME, slot, (int)me);
	pthread_mutex_unlock(&open_mutex);
	return P->async_fd;
fail:
	if (P && P->dirfd >= 0) {
		close(P->dirfd);
		P->dirfd = -1;
	}
fail_unlocked:
	pthread_mutex_unlock(&open_mutex);
	if (!errno)
		errno = ENODEV;
	return -1;
}

void sdev_close(void)
{
	uint32_t slot;
	pthread_mutex_lock(&open_mutex);
	if (!P || !P->refs || --P->refs) {
		pthread_mutex_unlock(&open_mutex);
		return;
	}
	slot = sd_self->slot;
	sd_lock(&sd_registry->lock);
	atomic_store(&sd_registry->proc[slot].pid, 0);
	sd_cleanup_slot(slot);
	sd_unlock(&sd_registry->lock);
	for (int s = 0; s < SD_MAX_PROCS; s++) {
		for (int c = 0; c <= SD_MAX_CHAN; c++)
			if (P->fifo[s][c].pid) {
				close(P->fifo[s][c].fd);
				P->fifo[s][c].pid = 0;
			}
		if (P->views[s].seg) {
			set_range(2 + s, NULL, 0);
			munmap(P->views[s].seg, SD_SEG_SIZE);
			P->views[s].seg = NULL;
			P->views[s].pid = 0;
		}
	}
	close(P->async_fd);
	close(P->dirfd);
	P->dirfd = -1;
	sd_self = NULL;
	iblog(1, "sdev: %s closed", SDEV_NAME);
	pthread_mutex_unlock(&open_mutex);
}

/* ------------------------------------------------------------ FIFOs */
static int peer_fifo(struct sd_view *owner, int chan)
{
	char name[64];
	int *fd = &P->fifo[owner->slot][chan + 1].fd;
	pid_t *pid = &P->fifo[owner->slot][chan + 1].pid;

	if (*pid == owner->pid)
		return *fd;
	if (*pid) {
		close(*fd);
		*pid = 0;
	}
	if (chan < 0)
		snprintf(name, sizeof name, "as-%u", owner->slot);
	else
		snprintf(name, sizeof name, "ch-%u-%d", owner->slot, chan);
	*fd = openat(P->dirfd, name, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return -1;
	*pid = owner->pid;
	return *fd;
}

static pthread_mutex_t fifo_mutex = PTHREAD_MUTEX_INITIALIZER;

void sd_chan_notify(struct sd_view *owner, int chan, uint32_t cq)
{
	int fd, ok;
	pthread_mutex_lock(&fifo_mutex);
	if (owner == sd_self && P->chan_fd[chan] >= 0)
		fd = P->chan_fd[chan];
	else
		fd = peer_fifo(owner, chan);
	ok = fd >= 0 && write(fd, &cq, sizeof cq) == sizeof cq;
	pthread_mutex_unlock(&fifo_mutex);
	if (!ok)
		iblog(1, "sdev: cannot signal completion channel %d of process %d: %s", chan,
		      owner->pid, strerror(errno));
}

void sd_async_raise(struct sd_view *owner, int type, int kind, uint32_t idx)
{
	uint32_t rec[4] = {(uint32_t)type, (uint32_t)kind, idx, 0};
	int fd, ok;
	iblog(1, "sdev: async event %d on process %d", type, owner->pid);
	pthread_mutex_lock(&fifo_mutex);
	fd = owner == sd_self ? P->async_fd : peer_fifo(owner, -1);
	ok = fd >= 0 && write(fd, rec, sizeof rec) == sizeof rec;
	pthread_mutex_unlock(&fifo_mutex);
	if (!ok)
		iblog(1, "sdev: cannot raise an async event at process %d: %s", owner->pid,
		      strerror(errno));
}

int sdev_async_get(int *type, int *kind, uint64_t *cookie)
{
	uint32_t rec[4];
	struct sd_seg *s = sd_self->seg;
	ssize_t n = read(P->async_fd, rec, sizeof rec);
	if (n != sizeof rec) {
		if (n >= 0)
			errno = EIO;
		return -1;
	}
	*type = (int)rec[0];
	*kind = (int)rec[1];
	*cookie = 0;
	if (rec[1] == 1 && rec[2] < SD_MAX_CQ)
		*cookie = s->cq[rec[2]].cookie;
	else if (rec[1] == 2 && rec[2] < SD_MAX_QP)
		*cookie = s->qp[rec[2]].cookie;
	else if (rec[1] == 3 && rec[2] < SD_MAX_SRQ)
		*cookie = s->srq[rec[2]].cookie;
	return 0;
}

struct sdev_chan *sdev_chan_create(int *fd)
{
	struct sd_seg *s = sd_self->seg;
	char name[64];
	for (int i = 0; i < SD_MAX_CHAN; i++) {
		uint32_t z = 0;
		if (!atomic_compare_exchange_strong(&s->chan[i].used, &z, 1))
			continue;
		snprintf(name, sizeof name, "ch-%u-%d", sd_self->slot, i);
		unlinkat(P->dirfd, name, 0);
		if (mkfifoat(P->dirfd, name, 0600) ||
		    (*fd = openat(P->dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			atomic_store(&s->chan[i].used, 0);
			return NULL;
		}
		P->chan_fd[i] = *fd;
		return (struct sdev_chan *)&s->chan[i];
	}
	errno = ENOMEM;
	return NULL;
}

void sdev_chan_destroy(struct sdev_chan *ch)
{
	struct sd_seg *s = sd_self->seg;
	int i = (int)((struct sd_chan *)ch - s->chan);
	char name[64];
	snprintf(name, sizeof name, "ch-%u-%d", sd_self->slot, i);
	unlinkat(P->dirfd, name, 0);
	close(P->chan_fd[i]);
	P->chan_fd[i] = -1;
	atomic_store(&s->chan[i].used, 0);
}

uint64_t sdev_chan_get(struct sdev_chan *ch)
{
	struct sd_seg *s = sd_self->seg;
	int i = (int)((struct sd_chan *)ch - s->chan);
	uint32_t cq;
	ssize_t n = read(P->chan_fd[i], &cq, sizeof cq);
	if (n != sizeof cq || cq >= SD_MAX_CQ) {
		if (n >= 0)
			errno = EIO;
		return 0;
	}
	return s->cq[cq].cookie;
}

/* ------------------------------------------------------------ description */
static uint64_t guid_cached;
uint64_t sdev_guid(void)
{
	/* from the machine id: stable on the host, the same for every process */
	if (!guid_cached) {
		char buf[64] = "";
		uint64_t h = 0xcbf29ce484222325ull;
		int fd = open("/etc/machine-id", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (read(fd, buf, sizeof buf - 1) < 0)
				buf[0] = 0;
			close(fd);
		}
		for (char *p = buf; *p; p++)
			h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
		h = (h & ~0xff00000000000000ull) | 0x0200000000000000ull;
		guid_cached = __builtin_bswap64(h);
	}
	return guid_cached;
}

void sdev_gid(union ibv_gid *g)
{
	memset(g, 0, sizeof *g);
	g->global.subnet_prefix = __builtin_bswap64(0xfe80000000000000ull);
	g->global.interface_id = sdev_guid();
}

uint16_t sdev_lid(void) { return SD_LID; }

void sdev_query_device(struct ibv_device_attr *a)
{
	memset(a, 0, sizeof *a);
	snprintf(a->fw_ver, sizeof a->fw_ver, "ckptmpi-sdev 1.0");
	a->node_guid = sdev_guid();
	a->sys_image_guid = sdev_guid();
	a->max_mr_size = 1ull << 40;
	a->page_size_cap = 4096;
	a->vendor_id = 0xca7e; /* no vendor's: tools pick no vendor-specific path */
	a->vendor_part_id = 1;
	a->hw_ver = 1;
	a->max_qp = SD_MAX_QP;
	a->max_qp_wr = SD_MAX_WR;
	a->device_cap_flags = IBV_DEVICE_RC_RNR_NAK_GEN | IBV_DEVICE_MEM_WINDOW |
	                      IBV_DEVICE_MEM_WINDOW_TYPE_2B |
	                      IBV_DEVICE_PORT_ACTIVE_EVENT | IBV_DEVICE_SYS_IMAGE_GUID;
	a->max_sge = SD_MAX_SGE;
	a->max_sge_rd = SD_MAX_SGE;
	a->max_cq = SD_MAX_CQ;
	a->max_cqe = SD_MAX_CQE - 1;
	a->max_mr = SD_MAX_MR - 1;
	a->max_pd = SD_MAX_PD;
	a->max_qp_rd_atom = 16;
	a->max_ee_rd_atom = 0;
	a->max_res_rd_atom = 16 * SD_MAX_QP;
	a->max_qp_init_rd_atom = 16;
	a->atomic_cap = IBV_ATOMIC_HCA;
	a->max_srq = SD_MAX_SRQ;
	a->max_srq_wr = SD_MAX_WR;
	a->max_srq_sge = SD_MAX_SGE;
	a->max_pkeys = 1;
	a->local_ca_ack_delay = 15;
	a->phys_port_cnt = 1;
	a->max_ah = 1 << 20;
	a->max_mw = SD_MAX_MR - 1;
}

void sdev_query_port(struct ibv_port_attr *p)
{
	memset(p, 0, sizeof *p);
	p->state = IBV_PORT_ACTIVE;
	p->max_mtu = IBV_MTU_4096;
	p->active_mtu = IBV_MTU_4096;
	p->gid_tbl_len = 2; /* index 0 is the port's GID, 1 is empty */
	p->port_cap_flags = IBV_PORT_SM;
	p->max_msg_sz = 1u << 31;
	p->bad_pkey_cntr = 0;
	p->qkey_viol_cntr = 0;
	p->pkey_tbl_len = 1;
	p->lid = SD_LID;
	p->sm_lid = SD_LID;
	p->lmc = 0;
	p->max_vl_num = 1;
	p->sm_sl = 0;
	p->subnet_timeout = 18;
	p->init_type_reply = 0;
	p->active_width = 2;  /* 4x */
	p->active_speed = 32; /* EDR */
	p->phys_state = 5;    /* LinkUp */
	p->link_layer = IBV_LINK_LAYER_INFINIBAND;
}

/* ------------------------------------------------------------ PD, MR */
uint32_t sdev_alloc_pd(void)
{
	struct sd_seg *s = sd_self->seg;
	uint32_t pd = __atomic_fetch_add(&s->next_pd, 1, __ATOMIC_RELAXED);
	if (!pd) {
		errno = ENOMEM;
		return 0;
	}
	return pd;
}

void sdev_dealloc_pd(uint32_t pd) { (void)pd; }

int sdev_reg_mr(uint32_t pd, void *addr, size_t len, uint64_t iova, int access, uint32_t *key)
{
	return sdev_reg_mr_key(pd, addr, len, iova, access, 0, key);
}

int sdev_reg_mr_key(uint32_t pd, void *addr, size_t len, uint64_t iova, int access, uint32_t want,
                    uint32_t *key)
{
	struct sd_seg *s = sd_self->seg;
	static _Atomic uint32_t tag = 0x5a;

	if (len > (1ull << 40) || (access & IBV_ACCESS_ZERO_BASED))
		return EINVAL;
	/* remote write or atomic needs local write, as on a real device */
	if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IBV_ACCESS_LOCAL_WRITE))
		return EINVAL;
	for (uint32_t n = 0; n < SD_MAX_MR; n++) {
		uint32_t i = 1 + (s->mr_hint + n) % (SD_MAX_MR - 1), z = 0;
		uint32_t k = i << 8 | ((atomic_fetch_add(&tag, 1) & 0xff) | 1);
		/* the wanted key first (n 0 stands for it), then any */
		if (n == 0) {
			if (!want || (want >> 8) == 0 || (want >> 8) >= SD_MAX_MR || !(want & 0xff))
				continue;
			i = want >> 8;
			k = want;
		}
		if (atomic_load(&s->mr[i].key))
			continue;
		/* reserve, fill, publish */
		if (!atomic_compare_exchange_strong(&s->mr[i].key, &z, 1))
			continue;
		s->mr[i].pd = pd;
		s->mr[i].access = access;
		s->mr[i].mw = 0;
		s->mr[i].qpn = 0;
		s->mr[i].addr = (uint64_t)addr;
		s->mr[i].iova = iova;
		s->mr[i].len = len;
		atomic_store(&s->mr[i].key, k);
		s->mr_hint = i;
		*key = k;
		return 0;
	}
	return ENOMEM;
}

int sdev_rereg_mr(uint32_t key, uint32_t pd, void *addr, size_t len, uint64_t iova, int access,
                  int flags)
{
	struct sd_seg *s = sd_self->seg;
	uint32_t i = key >> 8;
	struct sd_mr *m;
	if (i == 0 || i >= SD_MAX_MR || atomic_load(&s->mr[i].key) != key)
		return EINVAL;
	m = &s->mr[i];
	if (flags & IBV_REREG_MR_CHANGE_ACCESS) {
		if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
		    !(access & IBV_ACCESS_LOCAL_WRITE))
			return EINVAL;
	}
	/* the key is withdrawn while it changes, as the HCA's MKey is */
	atomic_store(&m->key, 1);
	if (flags & IBV_REREG_MR_CHANGE_TRANSLATION) {
		m->addr = (uint64_t)addr;
		m->iova = iova;
		m->len = len;
	}
	if (flags & IBV_REREG_MR_CHANGE_PD)
		m->pd = pd;
	if (flags & IBV_REREG_MR_CHANGE_ACCESS)
		m->access = access;
	atomic_store(&m->key, key);
	return 0;
}

int sdev_alloc_mw(uint32_t pd, int type, uint32_t *key)
{
	int e;
	if (type != IBV_MW_TYPE_1 && type != IBV_MW_TYPE_2)
		return EINVAL;
	/* an unbound window: no range, no access */
	e = sdev_reg_mr(pd, NULL, 0, 0, 0, key);
	if (!e)
		sd_self->seg->mr[*key >> 8].mw = (uint8_t)type;
	return e;
}

int sdev_dealloc_mw(uint32_t key)
{
	struct sd_seg *s = sd_self->seg;
	uint32_t i = key >> 8;
	if (i == 0 || i >= SD_MAX_MR || !s->mr[i].mw || (atomic_load(&s->mr[i].key) >> 8) != i)
		return EINVAL;
	atomic_store(&s->mr[i].key, 0);
	return 0;
}

int sdev_dereg_mr(uint32_t key)
{
	struct sd_seg *s = sd_self->seg;
	uint32_t i = key >> 8;
	if (i == 0 || i >= SD_MAX_MR || atomic_load(&s->mr[i].key) != key || s->mr[i].mw)
		return EINVAL;
	atomic_store(&s->mr[i].key, 0);
	return 0;
}

uint32_t sdev_xrcd_id(int fd)
{
	static _Atomic uint32_t next = 1;
	struct stat st;
	uint64_t h;
	if (fd < 0)
		return 0x80000000u | (sd_self->slot << 16) | (atomic_fetch_add(&next, 1) & 0xffff);
	if (fstat(fd, &st)) {
		errno = EBADF;
		return 0;
	}
	/* the file names the domain for every process that opens it */
	h = ((uint64_t)st.st_dev * 0x9e3779b97f4a7c15ull) ^ (uint64_t)st.st_ino;
	h ^= h >> 31;
	return (uint32_t)(h & 0x7fffffffu) | 1u;
}

int sdev_mr_access(uint32_t key)
{
	struct sd_seg *s = sd_self->seg;
	uint32_t i = key >> 8;
	if (i == 0 || i >= SD_MAX_MR || atomic_load(&s->mr[i].key) != key)
		return -1;
	return s->mr[i].access;
}

/* A process that ends without closing the device leaves nothing behind
 * (a killed one is cleaned up by the next process that opens it). */
static __attribute__((destructor)) void sdev_at_exit(void)
{
	if (!P || !P->refs || !sd_self || !sd_registry || sd_self->pid != getpid())
		return;
	sd_lock(&sd_registry->lock);
	if (atomic_load(&sd_registry->proc[sd_self->slot].pid) == sd_self->pid) {
		atomic_store(&sd_registry->proc[sd_self->slot].pid, 0);
		sd_cleanup_slot(sd_self->slot);
	}
	sd_unlock(&sd_registry->lock);
}

/* ------------------------------------------------------------ checkpoints */
void sdev_restart_reset(void)
{
	/* the old mappings are not there (left out of the image): nothing of
	 * them is touched, nothing closed (the fds are not ours any more) */
	P = NULL;
	sd_self = NULL;
	sd_registry = NULL;
	pid_reset();
}

uint32_t sdev_self_id(void) { return sd_self ? (sd_self->gen & 0xf) << 8 | sd_self->slot : 0; }

static int move_fd(int from, int to)
{
	if (from == to)
		return to;
	if (dup3(from, to, O_CLOEXEC) < 0)
		return -1;
	close(from);
	return to;
}

int sdev_move_async_fd(int to)
{
	if (!P || move_fd(P->async_fd, to) < 0)
		return -1;
	P->async_fd = to;
	return 0;
}

int sdev_move_chan_fd(struct sdev_chan *ch, int to)
{
	int i = (int)((struct sd_chan *)ch - sd_self->seg->chan);
	if (move_fd(P->chan_fd[i], to) < 0)
		return -1;
	P->chan_fd[i] = to;
	return 0;
}

/* read what a FIFO holds (nothing blocks: FIONREAD says how much), and
 * write it back, so the program reads it as before */
static int fifo_peek(int fd, void *buf, size_t cap, size_t *got)
{
	int n = 0;
	ssize_t r, w;
	*got = 0;
	if (ioctl(fd, FIONREAD, &n) || n < 0)
		return -1;
	if (!buf || !n) {
		*got = (size_t)n;
		return 0;
	}
	if ((size_t)n > cap) {
		errno = EOVERFLOW;
		return -1;
	}
	r = read(fd, buf, (size_t)n);
	if (r != n)
		return -1;
	w = write(fd, buf, (size_t)n);
	if (w != n)
		return -1;
	*got = (size_t)n;
	return 0;
}

int sdev_chan_snapshot(struct sdev_chan *ch, uint64_t *cookies, int max)
{
	struct sd_seg *s = sd_self->seg;
	int i = (int)((struct sd_chan *)ch - s->chan);
	uint32_t idx[4096];
	size_t got;
	int n;
	if (fifo_peek(P->chan_fd[i], max ? idx : NULL, sizeof idx, &got))
		return -1;
	n = (int)(got / sizeof idx[0]);
	if (!max)
		return n;
	if (n > max) {
		errno = EOVERFLOW;
		return -1;
	}
	for (int k = 0; k < n; k++)
		cookies[k] = idx[k] < SD_MAX_CQ ? s->cq[idx[k]].cookie : 0;
	return n;
}

int sdev_async_snapshot(struct sdev_async_rec *out, int max)
{
	struct sd_seg *s = sd_self->seg;
	uint32_t rec[1024][4];
	size_t got;
	int n;
	if (!P || fifo_peek(P->async_fd, max ? rec : NULL, sizeof rec, &got))
		return -1;
	n = (int)(got / sizeof rec[0]);
	if (!max)
		return n;
	if (n > max) {
		errno = EOVERFLOW;
		return -1;
	}
	for (int k = 0; k < n; k++) {
		uint32_t x = rec[k][2];
		out[k].type = (int32_t)rec[k][0];
		out[k].kind = (int32_t)rec[k][1];
		out[k].cookie = rec[k][1] == 1 && x < SD_MAX_CQ    ? s->cq[x].cookie :
		                rec[k][1] == 2 && x < SD_MAX_QP    ? s->qp[x].cookie :
		                rec[k][1] == 3 && x < SD_MAX_SRQ   ? s->srq[x].cookie : 0;
	}
	return n;
}

int sdev_chan_requeue(struct sdev_chan *ch, struct sdev_cq *cq)
{
	struct sd_seg *s = sd_self->seg;
	int i = (int)((struct sd_chan *)ch - s->chan);
	uint32_t idx = (uint32_t)((struct sd_cq *)cq - s->cq);
	return write(P->chan_fd[i], &idx, sizeof idx) == sizeof idx ? 0 : -1;
}

int sdev_async_requeue(int type, int kind, void *obj)
{
	struct sd_seg *s = sd_self->seg;
	uint32_t rec[4] = {(uint32_t)type, (uint32_t)kind, 0, 0};
	if (kind == 1)
		rec[2] = (uint32_t)((struct sd_cq *)obj - s->cq);
	else if (kind == 2)
		rec[2] = (uint32_t)((struct sd_qp *)obj - s->qp);
	else if (kind == 3)
		rec[2] = (uint32_t)((struct sd_srq *)obj - s->srq);
	return write(P->async_fd, rec, sizeof rec) == sizeof rec ? 0 : -1;
}
