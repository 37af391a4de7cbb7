/* The seam between core/ and what plugs into it.
 *
 * core/ knows neither MPI nor verbs. pmpi/ and ibshadow/ each register a
 * table of hooks (as CRIU's file kinds each export an ops table), and core
 * calls them at each phase of a checkpoint and a restart:
 *
 *   check     every plugin: can this process be checkpointed now?
 *   agree     the job: every member says ok
 *   quiesce   the job: a consistent cut, every program thread parked;
 *             then every plugin's own cut (what lives outside the
 *             upper half's memory, e.g. the verbs device), agreed
 *   capture   core: memory, threads, process state; then every plugin,
 *             with the threads parked: its own state, or a refusal
 *   write     the job: the container, every member its slice
 *   commit    the job: the generation made visible
 *   resume    every plugin, in reverse order, before the threads run on
 *   restore   every plugin, in order, before a restarted program runs
 *
 * The job is how the members of a job act together: at most one plugin
 * provides one (the MPI runtime's ranks); without, the process is a job of
 * its own (core/hooks.c, the trivial job). */
#ifndef CKPTMPI_CORE_HOOKS_H
#define CKPTMPI_CORE_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "core/image.h"
#include "core/park.h"
#include "storage/container.h"

struct ckpt_job_ops {
	/* the job's own transport is up (MPI initialised at a thread level
	 * that lets the control thread use it beside the program) */
	int (*active)(void);
	int (*rank)(void);
	int (*size)(void);
	const char *(*flavour)(void); /* stored in the container: "none" alone */
	/* bracket every use of the transport by the control thread: enter
	 * returns 0 once the program is past its last use of it (finalizing) */
	int (*enter)(void);
	void (*leave)(void);
	int (*may_begin)(void);       /* 0: no new checkpoint (finalizing) */
	/* starting a checkpoint: a member asks member 0 (why: a
	 * CKPTMPI_REQ_* byte; last_gen: the last generation it saw begin),
	 * member 0 tells every member */
	void (*request)(int why, uint64_t last_gen);
	void (*begin)(uint64_t gen, int why);
	/* 1 when a checkpoint starts: member 0 got a request (*gen 0: member
	 * 0 chooses), another member got member 0's begin (*gen, *why) */
	int (*poll)(uint64_t last_gen, uint64_t *gen, int *why);
	int (*agree)(int ok);
	/* on success every program thread is parked at a consistent cut; on
	 * failure none is, and err says why */
	int (*quiesce)(struct park_result *parked, char *err, size_t len);
	int (*write)(const char *dir, const struct ck_generation_info *info, struct ck_image *img,
	             container_progress_fn progress, char *tmp, size_t tmplen);
	int (*commit)(const char *dir, uint64_t gen, const char *tmp);
	/* optional (NULL: write does it all): the write in two parts, the
	 * page data behind the running program. write_behind_possible
	 * (local, in the pause): 1 when this member's page data can be left
	 * to a writer forked at the cut, provided every member says so; the
	 * members agree, each forks its writer and the program runs on.
	 * write_begin is then collective, beside the running program: the
	 * container all but the page data, and in *plan (*planlen bytes,
	 * kept until write_end) what this member's writer needs to write
	 * them; it fails rather than write them itself. write_pages runs in
	 * the forked writer with the plan and the image as it was, using no
	 * transport. Then the members agree on the outcome and commit, or
	 * member 0 removes tmp. */
	int (*write_behind_possible)(const char *dir, struct ck_image *img);
	int (*write_begin)(const char *dir, const struct ck_generation_info *info,
	                   struct ck_image *img, container_progress_fn progress, char *tmp,
	                   size_t tmplen, const void **plan, size_t *planlen);
	int (*write_pages)(const void *plan, size_t planlen, const struct ck_image *img,
	                   container_progress_fn progress);
	void (*write_end)(void);
	/* allgather: every member's `len` bytes (the same len on all), in
	 * member order, into all (size() * len bytes); the same answer on
	 * every member. 0, or -1 with the reason logged (naming the member).
	 * Used at a cut and at a restart once the members met again. */
	int (*exchange)(const void *mine, size_t len, void *all);
	/* the members start together (one launcher; init waits for all, as
	 * MPI_Init does), so one that cannot start must stop them all: once
	 * init is done, every member's start outcome (0: started) into all
	 * (size() ints), by a channel nothing else uses (the transport's
	 * first messages are the program's). 0, or -1 said. NULL: members
	 * join one by one (a job without MPI) */
	int (*start_agree)(int mine, int *all);
};

struct ckpt_hooks {
	const char *name;
	/* runtime start-up, in order: env before the runtime re-executes
	 * itself (1: it changed the environment), upper_preload before the
	 * program is loaded, init before the program starts */
	int (*env)(void);
	void (*upper_preload)(void);
	int (*init)(void);
	const struct ckpt_job_ops *job; /* NULL for most plugins */
	/* 0: yes; -1: no, and err names what prevents it */
	int (*check)(char *err, size_t len);
	/* after the job's quiesce (every member's threads parked, agreed):
	 * the plugin's own cut, before anything is captured; -1 with err
	 * refuses the checkpoint (resume is called then too) */
	int (*quiesce)(const struct ckpt_job_ops *job, const struct park_result *parked, char *err,
	               size_t len);
	/* every program thread parked: add to the image, or refuse (-1, err) */
	int (*capture)(struct ck_image *img, char *err, size_t len);
	void (*resume)(void);
	/* restart: the plugin's state re-created from the image before any
	 * thread of the program runs; the job's plugin first (its members
	 * meet again), then the others in order, with the job to use */
	int (*restore)(const struct ck_image *img);
	/* every plugin restored: the program's threads run next */
	void (*restored)(void);
	/* optional: 0 when the plugin keeps state in img's memory that is
	 * reached behind the program's back (by the kernel for a peer), so
	 * its pages cannot come in while the program runs (a lazy restart) */
	int (*lazy_ok)(const struct ck_image *img);
};

/* From a constructor of the plugin's file (linked into the runtime). */
void hooks_register(const struct ckpt_hooks *h);

/* The job the process belongs to: a plugin's while its transport is
 * active, else the process's own. */
const struct ckpt_job_ops *hooks_job(void);
/* 1 when job (a hooks_job() answer) is a job of several members */
int hooks_job_shared(const struct ckpt_job_ops *job);
/* The plugin's job even before it is active (a restart reads its slice) */
const struct ckpt_job_ops *hooks_job_registered(void);
/* 1 when a plugin provides a job (the process is one of several) */
int hooks_job_plugin(void);

int hooks_env(void);
void hooks_upper_preload(void);
int hooks_init(void);
int hooks_check(char *err, size_t len);
int hooks_quiesce(const struct ckpt_job_ops *job, const struct park_result *parked, char *err,
                  size_t len);
int hooks_capture(struct ck_image *img); /* logs the refusal */
void hooks_resume(void);
int hooks_restore(const struct ck_image *img);
/* 1 when no plugin forbids a lazy restart of img (a job's plugin must
 * allow it: lazy_ok set) */
int hooks_lazy_ok(const struct ck_image *img);

#endif
