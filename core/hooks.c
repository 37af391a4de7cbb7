/* The registry of plugin hooks (core/hooks.h) and the trivial job: a
 * process that is a job of its own. */
#include "core/hooks.h"

#include <string.h>

#include "core/log.h"

#define MAX_PLUGINS 8

static const struct ckpt_hooks *plugins[MAX_PLUGINS];
static int nplugins;

void hooks_register(const struct ckpt_hooks *h)
{
	if (nplugins == MAX_PLUGINS) {
		log_error("too many runtime plugins: %s left out", h->name);
		return;
	}
	plugins[nplugins++] = h;
}

/* ---- the trivial job ---- */

static int one(void) { return 1; }
static int zero(void) { return 0; }
static const char *no_flavour(void) { return "none"; }
static void nothing(void) {}
static void no_request(int why, uint64_t last_gen) { (void)why, (void)last_gen; }
static void no_begin(uint64_t gen, int why) { (void)gen, (void)why; }
static int no_poll(uint64_t last_gen, uint64_t *gen, int *why)
{
	(void)last_gen, (void)gen, (void)why;
	return 0;
}
static int alone_agree(int ok) { return ok; }
static int alone_quiesce(struct park_result *parked, char *err, size_t len)
{
	(void)err, (void)len;
	return park_all(parked);
}

static int alone_exchange(const void *mine, size_t len, void *all)
{
	memcpy(all, mine, len);
	return 0;
}

static const struct ckpt_job_ops alone = {
	.active = one,
	.rank = zero,
	.size = one,
	.flavour = no_flavour,
	.enter = one,
	.leave = nothing,
	.may_begin = one,
	.request = no_request,
	.begin = no_begin,
	.poll = no_poll,
	.agree = alone_agree,
	.quiesce = alone_quiesce,
	.write = container_write,
	.commit = container_commit,
	.exchange = alone_exchange,
};

const struct ckpt_job_ops *hooks_job_registered(void)
{
	for (int i = 0; i < nplugins; i++)
		if (plugins[i]->job)
			return plugins[i]->job;
	return &alone;
}

const struct ckpt_job_ops *hooks_job(void)
{
	const struct ckpt_job_ops *j = hooks_job_registered();
	return j->active() ? j : &alone;
}

int hooks_job_shared(const struct ckpt_job_ops *job) { return job != &alone; }

int hooks_job_plugin(void) { return hooks_job_registered() != &alone; }

/* ---- every plugin ---- */

int hooks_env(void)
{
	int changed = 0;
	for (int i = 0; i < nplugins; i++)
		if (plugins[i]->env && plugins[i]->env())
			changed = 1;
	return changed;
}

void hooks_upper_preload(void)
{
	for (int i = 0; i < nplugins; i++)
		if (plugins[i]->upper_preload)
			plugins[i]->upper_preload();
}

int hooks_init(void)
{
	const char *first = NULL;

	/* one job per process: an MPI rank cannot also be a member of a job
	 * without MPI (CKPTMPI_JOB_SIZE) */
	for (int i = 0; i < nplugins; i++) {
		if (!plugins[i]->job)
			continue;
		if (first) {
			log_error("this process would belong to two jobs (%s and %s): a job without MPI "
			          "(--job-size, CKPTMPI_JOB_SIZE) is for programs that do not use MPI",
			          first, plugins[i]->name);
			return -1;
		}
		first = plugins[i]->name;
	}
	for (int i = 0; i < nplugins; i++)
		if (plugins[i]->init && plugins[i]->init())
			return -1;
	return 0;
}

int hooks_check(char *err, size_t len)
{
	for (int i = 0; i < nplugins; i++)
		if (plugins[i]->check && plugins[i]->check(err, len))
			return -1;
	return 0;
}

int hooks_quiesce(const struct ckpt_job_ops *job, const struct park_result *parked, char *err,
                  size_t len)
{
	for (int i = 0; i < nplugins; i++)
		if (plugins[i]->quiesce && plugins[i]->quiesce(job, parked, err, len))
			return -1;
	return 0;
}

int hooks_capture(struct ck_image *img)
{
	char err[1024];
	for (int i = 0; i < nplugins; i++) {
		err[0] = 0;
		if (plugins[i]->capture && plugins[i]->capture(img, err, sizeof err)) {
			log_error("%s", err[0] ? err : "a plugin refused the checkpoint");
			return -1;
		}
	}
	return 0;
}

void hooks_resume(void)
{
	for (int i = nplugins - 1; i >= 0; i--)
		if (plugins[i]->resume)
			plugins[i]->resume();
}

int hooks_restore(const struct ck_image *img)
{
	/* the job's plugin first: the others may talk to the members */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < nplugins; i++) {
			if (!plugins[i]->restore || (pass == 0) != (plugins[i]->job != NULL))
				continue;
			if (plugins[i]->restore(img)) {
				log_error("restart: %s state could not be re-created", plugins[i]->name);
				return -1;
			}
		}
	for (int i = 0; i < nplugins; i++)
		if (plugins[i]->restored)
			plugins[i]->restored();
	return 0;
}

int hooks_lazy_ok(const struct ck_image *img)
{
	for (int i = 0; i < nplugins; i++) {
		/* a job's plugin says so itself: its members' memory may be
		 * reached by their peers */
		if (plugins[i]->job && !plugins[i]->lazy_ok)
			return 0;
		if (plugins[i]->lazy_ok && !plugins[i]->lazy_ok(img))
			return 0;
	}
	return 1;
}
