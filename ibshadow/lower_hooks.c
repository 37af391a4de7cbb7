/* The verbs shadow's hooks into core (core/hooks.h), on the runtime's
 * side. The shadow lives in the upper half (libckptmpi-verbs.so) and
 * publishes a summary of its resources, its section word and the
 * functions of its cut and restart (ibshadow/summary.h) on a page at a
 * fixed address, so a restarted runtime finds it in the restored memory.
 *
 *   check    refuses resources the cut cannot carry (XRC, memory windows,
 *            parent domains), naming the first; honours the shadow's
 *            sections from now on (core/park.h)
 *   quiesce  after the job's quiesce (every member parked, agreed): the
 *            device's fds and mappings are left out of the image, and the
 *            shadow records what lives only in the device (its cut)
 *   resume   the program runs on: the fds and mappings are its again, the
 *            record goes
 *   restore  after the job's members met again: the device re-created,
 *            the members' translation tables exchanged (the job's
 *            exchange), QPs walked back, receives and sends posted again
 *
 * The shadow's functions run here, on the control thread, under the
 * thread pointer of a parked program thread (the main thread's at a
 * restart), with every signal blocked: upper-half code needs its own TLS
 * (errno, the stack guard, its libc's). shadow_ckpt.c keeps to what is
 * safe with every program thread parked. */
#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/capture.h"
#include "core/control.h"
#include "core/hooks.h"
#include "core/link.h"
#include "core/log.h"
#include "core/procstate.h"
#include "core/rawsys.h"
#include "ibshadow/summary.h"

typedef int (*cut_fn)(char *, size_t);
typedef void (*cut_done_fn)(void);
typedef int (*restart_fn)(int, void *, size_t, size_t *, const void *, int, char *, size_t);

static const struct ibshadow_summary *summary(void)
{
	const struct ibshadow_summary *s =
	    (const void *)(uintptr_t)control_link()->verbs_summary;
	return s && s->magic == IBSHADOW_SUMMARY_MAGIC ? s : NULL;
}

static int verbs_check(char *err, size_t len)
{
	const struct ibshadow_summary *s = summary();
	if (!s || !s->live)
		return 0;
	if (s->unsupported) {
		snprintf(err, len,
		         "the program holds %.*s (verbs): checkpoints of it are not supported yet; the "
		         "program runs on",
		         (int)sizeof s->unsupported_desc, s->unsupported_desc);
		return -1;
	}
	if (!s->at_fixed || !s->cut || !s->restart) {
		snprintf(err, len, "the verbs shadow could not place its state at %#llx: checkpoints of "
		         "verbs programs are not possible in this process; the program runs on",
		         (unsigned long long)IBSHADOW_SUMMARY_ADDR);
		return -1;
	}
	if (s->section_tls_off)
		park_add_section_word((volatile int64_t *)&s->section_tls_off);
	return 0;
}

/* ---- calling the shadow: its thread pointer, no signals ---- */
static uint64_t upper_fs;

#define UPPER_CALL(ret, call)                                                          \
	do {                                                                           \
		sigset_t all_, old_;                                                   \
		uint64_t mine_ = 0;                                                    \
		sigfillset(&all_);                                                     \
		raw_syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &all_, &old_, 8);        \
		raw_syscall2(SYS_arch_prctl, ARCH_GET_FS, &mine_);                     \
		raw_syscall2(SYS_arch_prctl, ARCH_SET_FS, upper_fs);                   \
		ret call;                                                              \
		raw_syscall2(SYS_arch_prctl, ARCH_SET_FS, mine_);                      \
		raw_syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &old_, NULL, 8);         \
	} while (0)

/* ---- the cut ---- */
#define MAX_DEV_FDS 512
static int dev_fds[MAX_DEV_FDS], n_dev_fds;
static int cut_taken;

/* the device's fds (files in its directory) are the runtime's while the
 * image is made: left out of it */
static int exclude_device_fds(const char *dir)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t dl = strlen(dir);

	if (!d) {
		log_error("/proc/self/fd: %s", strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		char p[64], link[4200];
		ssize_t n;
		int fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd <= 2 || !procstate_program_fd(fd))
			continue;
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		n = readlink(p, link, sizeof link - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		if (strncmp(link, dir, dl) || (link[dl] && link[dl] != '/'))
			continue;
		if (n_dev_fds == MAX_DEV_FDS) {
			closedir(d);
			log_error("more than %d fds of the verbs device", MAX_DEV_FDS);
			return -1;
		}
		dev_fds[n_dev_fds++] = fd;
		procstate_register_lower_fd(fd);
	}
	closedir(d);
	return 0;
}

static void give_back(void)
{
	for (int i = 0; i < n_dev_fds; i++)
		procstate_unregister_lower_fd(dev_fds[i]);
	n_dev_fds = 0;
	capture_exclude_clear();
}

static int verbs_quiesce(const struct ckpt_job_ops *job, const struct park_result *parked,
                         char *err, size_t len)
{
	const struct ibshadow_summary *s = summary();
	const struct ibshadow_range *r;
	int rc = 0;
	(void)job;

	if (!s || !s->live)
		return 0;
	if (parked->n < 1) {
		snprintf(err, len, "verbs: no program thread parked");
		return -1;
	}
	upper_fs = parked->slot[0].fs_base;
	for (int i = 0; i < parked->n; i++)
		if (parked->slot[i].tid == getpid())
			upper_fs = parked->slot[i].fs_base;
	if (!s->dev_dir[0] || exclude_device_fds(s->dev_dir)) {
		give_back();
		snprintf(err, len, "verbs: the device's fds cannot be left out of the image");
		return -1;
	}
	r = (const struct ibshadow_range *)(uintptr_t)s->dev_maps;
	for (uint32_t i = 0; r && i < s->dev_nmaps; i++)
		if (r[i].len && capture_exclude(r[i].start, r[i].len)) {
			give_back();
			snprintf(err, len, "verbs: the device's memory cannot be left out of the image");
			return -1;
		}
	err[0] = 0;
	UPPER_CALL(rc =, (((cut_fn)(uintptr_t)s->cut)(err, len)));
	if (rc) {
		give_back();
		if (!err[0])
			snprintf(err, len, "verbs: the cut failed");
		return -1;
	}
	cut_taken = 1;
	log_debug("verbs: cut taken, %d device fd(s) and its memory left out of the image",
	          n_dev_fds);
	return 0;
}

static void verbs_resume(void)
{
	const struct ibshadow_summary *s = summary();
	give_back();
	if (cut_taken && s)
		UPPER_CALL((void), (((cut_done_fn)(uintptr_t)s->cut_done)()));
	cut_taken = 0;
}

/* ---- a restart ---- */
#define TABLE_CAP (1u << 20)

static int verbs_restore(const struct ck_image *img)
{
	const struct ckpt_job_ops *job = hooks_job();
	const struct ibshadow_summary *s = NULL;
	int n = job->size(), me = job->rank(), rc = -1, ok;
	uint64_t mine_len = 0, *lens = NULL, max = 0;
	char *buf = NULL, *all = NULL, *ids = NULL, err[1024] = "";
	size_t used = 0;

	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].start <= IBSHADOW_SUMMARY_ADDR &&
		    IBSHADOW_SUMMARY_ADDR < img->regions[i].end) {
			s = (const void *)(uintptr_t)IBSHADOW_SUMMARY_ADDR;
			if (s->magic != IBSHADOW_SUMMARY_MAGIC)
				s = NULL;
		}
	upper_fs = 0;
	for (size_t i = 0; i < img->nthreads; i++)
		if (img->threads[i].is_main)
			upper_fs = img->threads[i].fs_base;
	/* nobody uses verbs (the job agrees that none has any): nothing to do,
	 * and nothing of the job's transport is used beyond that agreement */
	if (job->agree(!(s && s->live)))
		return 0;
	/* a member without verbs takes part in the exchanges all the same */
	if (s && s->live && upper_fs) {
		((struct ckptmpi_link *)(uintptr_t)control_link())->verbs_summary = (uint64_t)(uintptr_t)s;
		if (s->section_tls_off)
			park_add_section_word((volatile int64_t *)&s->section_tls_off);
	}
	/* the ids every member's virtual QP numbers use: the device gives
	 * none of them to the members now (a QP made after the restart would
	 * take a number the job still uses) */
	ids = calloc((size_t)n + 1, IBSHADOW_IDS_LEN);
	if (!ids) {
		log_error("restart: verbs: no memory for the members' ids");
		goto out;
	}
	if (s && s->live && upper_fs)
		UPPER_CALL((void), (((restart_fn)(uintptr_t)s->restart)(0, ids + (size_t)n * IBSHADOW_IDS_LEN,
		                                                        IBSHADOW_IDS_LEN, &used, NULL, 0,
		                                                        err, sizeof err)));
	if (job->exchange(ids + (size_t)n * IBSHADOW_IDS_LEN, IBSHADOW_IDS_LEN, ids)) {
		log_error("restart: verbs: the members' ids cannot be exchanged");
		goto out;
	}
	if (s && s->live && upper_fs) {
		buf = calloc(1, TABLE_CAP);
		if (!buf) {
			snprintf(err, sizeof err, "verbs: no memory for the translation table");
			mine_len = UINT64_MAX;
		} else {
			int r;
			UPPER_CALL(r =, (((restart_fn)(uintptr_t)s->restart)(1, buf, TABLE_CAP, &used, ids, n,
			                                                     err, sizeof err)));
			mine_len = r ? UINT64_MAX : used;
		}
	}
	lens = calloc((size_t)n, sizeof *lens);
	if (!lens || job->exchange(&mine_len, sizeof mine_len, lens)) {
		log_error("restart: verbs: the members' translation tables cannot be exchanged");
		goto out;
	}
	for (int k = 0; k < n; k++) {
		if (lens[k] == UINT64_MAX) {
			if (k == me)
				log_error("restart: %s", err);
			else
				log_error("restart: member %d could not re-create its verbs resources (see its "
				          "messages)", k);
			goto out;
		}
		if (lens[k] > max)
			max = lens[k];
	}
	if (!max) { /* nobody uses verbs */
		rc = 0;
		goto out;
	}
	all = calloc((size_t)n, max);
	if (!all) {
		log_error("restart: verbs: no memory for the members' tables");
		goto out;
	}
	if (!buf) {
		buf = calloc(1, max);
		if (!buf)
			goto out;
	}
	if (job->exchange(buf, max, all)) {
		log_error("restart: verbs: the members' translation tables cannot be exchanged");
		goto out;
	}
	ok = 1;
	if (s && s->live) {
		int r;
		UPPER_CALL(r =, (((restart_fn)(uintptr_t)s->restart)(2, NULL, max, NULL, all, n, err,
		                                                     sizeof err)));
		if (r) {
			log_error("restart: %s", err);
			ok = 0;
		}
	}
	/* every member's receives are posted and its QPs walked back before
	 * any member posts again the sends that had not run */
	if (!job->agree(ok)) {
		if (ok)
			log_error("restart: another member could not bring its verbs resources back");
		goto out;
	}
	if (s && s->live) {
		int r;
		UPPER_CALL(r =, (((restart_fn)(uintptr_t)s->restart)(3, NULL, 0, NULL, NULL, 0, err,
		                                                     sizeof err)));
		if (r) {
			log_error("restart: %s", err);
			goto out;
		}
		log_info("restart: verbs resources re-created (%u)", s->live);
	}
	rc = 0;
out:
	free(lens);
	free(buf);
	free(all);
	free(ids);
	return rc;
}

/* a program of the verbs shadow: its registered memory is read and
 * written by the peers' device through the kernel */
static int verbs_lazy_ok(const struct ck_image *img)
{
	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].start <= IBSHADOW_SUMMARY_ADDR &&
		    IBSHADOW_SUMMARY_ADDR < img->regions[i].end)
			return 0;
	return 1;
}

static const struct ckpt_hooks verbs_hooks = {
	.name = "verbs",
	.lazy_ok = verbs_lazy_ok,
	.check = verbs_check,
	.quiesce = verbs_quiesce,
	.resume = verbs_resume,
	.restore = verbs_restore,
};

static __attribute__((constructor)) void verbs_hooks_register(void)
{
	hooks_register(&verbs_hooks);
}
