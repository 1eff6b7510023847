/*
 * tokens.c - the rung jobserver. The pipe is created by the process that
 * owns the limit (the daemon, or `ladderd run`) and inherited by job
 * processes through LADDERD_TOKENS="rfd,wfd".
 *
 * XXX a job process killed with SIGKILL loses the tokens it held; the
 * daemon refills the pipe when it reaps such a job (see the supervisor).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tokens.h"

int
ladderd_tokens_init(struct ladderd_tokens *t, int n)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	t->rfd = fds[0];
	t->wfd = fds[1];
	if (fcntl(t->rfd, F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	for (int i = 0; i < n; i++)
		ladderd_tokens_give(t);
	return 0;
}

/* Adopt the pipe named by LADDERD_TOKENS; -ENOENT when there is none. */
int
ladderd_tokens_from_env(struct ladderd_tokens *t)
{
	const char *v = getenv("LADDERD_TOKENS");
	int r, w;

	if (v == NULL || sscanf(v, "%d,%d", &r, &w) != 2)
		return -ENOENT;
	if (fcntl(r, F_GETFD) < 0 || fcntl(w, F_GETFD) < 0)
		return -EBADF;
	t->rfd = r;
	t->wfd = w;
	(void)fcntl(r, F_SETFD, FD_CLOEXEC);
	(void)fcntl(w, F_SETFD, FD_CLOEXEC);
	(void)fcntl(r, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Let the next exec'd job process inherit the pipe. */
int
ladderd_tokens_export(const struct ladderd_tokens *t)
{
	char v[32];

	snprintf(v, sizeof(v), "%d,%d", t->rfd, t->wfd);
	if (fcntl(t->rfd, F_SETFD, 0) < 0 || fcntl(t->wfd, F_SETFD, 0) < 0)
		return -errno;
	return setenv("LADDERD_TOKENS", v, 1) < 0 ? -errno : 0;
}

/* 1 when a token was taken, 0 when none is free now, <0 on error. */
int
ladderd_tokens_take(struct ladderd_tokens *t)
{
	char c;
	ssize_t n;

	do
		n = read(t->rfd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return 1;
	if (n < 0 && errno == EAGAIN)
		return 0;
	return n == 0 ? -EPIPE : -errno;
}

void
ladderd_tokens_give(struct ladderd_tokens *t)
{
	ssize_t n;

	do
		n = write(t->wfd, "+", 1);
	while (n < 0 && errno == EINTR);
}

void
ladderd_tokens_release(struct ladderd_tokens *t)
{
	if (t->rfd >= 0)
		close(t->rfd);
	if (t->wfd >= 0)
		close(t->wfd);
	t->rfd = t->wfd = -1;
}
