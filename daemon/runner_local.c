/*
 * runner_local.c - units on this host: fork + exec `ladderd rung WORKDIR
 * UNIT` in its own process group, tied to the job's life. The in-flight
 * limit is the machine's rung jobserver (tokens.h), shared by every job.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "exe.h"
#include "fsutil.h"
#include "runner.h"

static pid_t
local_start(struct ladderd_runner *r, const struct ladderd_unit *u,
    const sigset_t *child_mask)
{
	pid_t pid;

	(void)r;
	if ((pid = fork()) != 0)
		return pid;
	/* Child: own process group, so a time limit kills its helpers too;
	 * and it dies with the job process, even a kill -9 of it. */
	(void)setpgid(0, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	(void)sigprocmask(SIG_SETMASK, child_mask, NULL);
	execl(ladderd_exe_path(), "ladderd", "rung", u->work_dir, u->name,
	    (char *)NULL);
	fprintf(stderr, "ladderd: cannot exec rung worker: %s\n",
	    strerror(errno));
	_exit(127);
}

static void
local_cancel(struct ladderd_runner *r, const struct ladderd_unit *u,
    pid_t pid, int hard)
{
	(void)r;
	(void)u;
	if (pid > 0)
		(void)kill(-pid, hard ? SIGKILL : SIGTERM);
}

static void
local_ended(struct ladderd_runner *r, const struct ladderd_unit *u,
    int status, char *why, size_t len)
{
	(void)r;
	(void)u;
	(void)status;
	if (len > 0)
		why[0] = '\0'; /* the exit status says it all */
}

static void
local_free(struct ladderd_runner *r)
{
	free(r);
}

static const struct ladderd_runner_ops local_ops = {
	.name = "local",
	.start = local_start,
	.cancel = local_cancel,
	.ended = local_ended,
	.free = local_free,
};

/* Owned by the caller (ladderd_runner_free); `machine` is borrowed. */
struct ladderd_runner *
ladderd_runner_local_new(struct ladderd_tokens *machine)
{
	struct ladderd_runner *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->ops = &local_ops;
	r->tokens = machine;
	r->shared_host = 1;
	return r;
}
