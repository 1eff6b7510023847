/*
 * runner.c - choosing a task's runner (runner.h); the runners themselves
 * are runner_local.c and runner_slurm.c.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "runner.h"

/* The runner a task asks for: its profile's, else the config's. */
static const char *
runner_name(const struct ladderd_conf *conf, const cJSON *ctx)
{
	const char *p = ctx ? ladderd_ctx_str(ctx, "profile.runner", NULL) :
			      NULL;

	return p ? p : conf->runner ? conf->runner : "local";
}

struct ladderd_runner *
ladderd_runner_new(const struct ladderd_conf *conf, const cJSON *ctx,
    struct ladderd_tokens *machine, char *err, size_t errlen)
{
	const char *name = runner_name(conf, ctx);
	struct ladderd_runner *r = NULL;

	if (strcmp(name, "slurm") == 0)
		r = ladderd_runner_slurm_new(conf->slurm, err, errlen);
	else if (strcmp(name, "local") == 0) {
		if ((r = ladderd_runner_local_new(machine)) == NULL)
			snprintf(err, errlen, "out of memory");
	} else
		snprintf(err, errlen, "unknown runner '%s'", name);
	return r;
}

void
ladderd_runner_free(struct ladderd_runner *r)
{
	if (r)
		r->ops->free(r);
}

int
ladderd_runner_check(const struct ladderd_conf *conf, const char *runner,
    char *err, size_t errlen)
{
	if (strcmp(runner, "slurm") == 0)
		return ladderd_runner_slurm_check(conf, err, errlen);
	if (strcmp(runner, "local") == 0)
		return 0;
	snprintf(err, errlen, "unknown runner '%s'", runner);
	return -1;
}
