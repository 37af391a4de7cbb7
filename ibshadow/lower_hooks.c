/* The verbs shadow's hooks into core (core/hooks.h), on the runtime's
 * side. The shadow itself lives in the upper half (libckptmpi-verbs.so)
 * and publishes a summary of its resources through the link
 * (ibshadow/summary.h).
 *
 * Until verbs jobs can be checkpointed (their cut, image and re-creation
 * are the next step), a checkpoint of a process that holds verbs
 * resources is refused, naming the oldest resource, and the program runs
 * on. The look that counts is taken with every program thread parked, so
 * its answer is the state the image would have held. */
#include <stdio.h>

#include "core/control.h"
#include "core/hooks.h"
#include "core/link.h"
#include "ibshadow/summary.h"

static const struct ibshadow_summary *summary(void)
{
	const struct ibshadow_summary *s =
	    (const void *)(uintptr_t)control_link()->verbs_summary;
	return s && s->magic == IBSHADOW_SUMMARY_MAGIC ? s : NULL;
}

static int verbs_refuse(char *err, size_t len)
{
	const struct ibshadow_summary *s = summary();
	if (!s || !s->live)
		return 0;
	snprintf(err, len,
	         "the program holds %u verbs resource(s), the oldest %.*s: checkpoints of verbs "
	         "programs are not supported yet; the program runs on",
	         s->live, (int)sizeof s->oldest, s->oldest);
	return -1;
}

static int verbs_capture(struct ck_image *img, char *err, size_t len)
{
	(void)img;
	return verbs_refuse(err, len);
}

/* Asked first too, with the program running: the refusal then names the
 * verbs resource rather than one of the device's descriptors, which the
 * capture would stumble on first. The capture's answer is the exact one. */
static const struct ckpt_hooks verbs_hooks = {
	.name = "verbs",
	.check = verbs_refuse,
	.capture = verbs_capture,
};

static __attribute__((constructor)) void verbs_hooks_register(void)
{
	hooks_register(&verbs_hooks);
}
