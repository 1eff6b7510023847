/*
 * request.c - operator requests through the spool (see request.h).
 *
 * Invariants: a request or reply file is complete when it has its .json
 * name (written under a temp name, renamed); the daemon removes a request
 * only after its reply is written, so a crash in between carries it out
 * again at the next start (cancel and retry refuse a second time cleanly).
 * Fails: an unreadable request gets a reply saying so and is removed; a
 * command whose reply does not come within its time-out withdraws its
 * request if it is still there and says so.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctx.h"
#include "fsutil.h"
#include "request.h"
#include "spool.h"

static int
request_is_name(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && name[0] != '.' && strcmp(name + n - 5, ".json") == 0;
}

/*
 * Write {"verb", "task_id"} as spool/requests/<usec>-<pid>.json; its name
 * goes to ret_name. 0 or a negative errno.
 */
int
ladderd_request_submit(const char *spool, const char *verb,
    const char *task_id, char *ret_name, size_t size)
{
	struct timespec ts;
	char path[PATH_MAX], *text = NULL;
	cJSON *r = cJSON_CreateObject();
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (r == NULL)
		return -ENOMEM;
	cJSON_AddStringToObject(r, "verb", verb);
	cJSON_AddStringToObject(r, "task_id", task_id);
	cJSON_AddNumberToObject(r, "pid", (double)getpid());
	if ((text = cJSON_Print(r)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = snprintf(ret_name, size, "%llu-%ld.json",
	    (unsigned long long)ts.tv_sec * 1000000ull +
		(unsigned long long)ts.tv_nsec / 1000ull,
	    (long)getpid());
	if (rc < 0 || (size_t)rc >= size ||
	    ladderd_spool_path(spool, "requests", ret_name, path,
		sizeof(path)) < 0) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = ladderd_fsutil_write_atomic(path, text, strlen(text));
out:
	cJSON_free(text);
	cJSON_Delete(r);
	return rc;
}

/* Read and remove the reply `name`; 0, or -ENOENT when it is not there. */
static int
request_take_reply(const char *spool, const char *name, cJSON **ret_reply)
{
	char path[PATH_MAX];
	int rc;

	if ((rc = ladderd_spool_path(spool, "replies", name, path,
		 sizeof(path))) < 0 ||
	    (rc = ladderd_ctx_load(path, ret_reply)) < 0)
		return rc;
	(void)unlink(path);
	return 0;
}

/*
 * Watch folder `dir` with inotify (no polling) until check(arg) returns
 * anything but -EAGAIN, for at most timeout_ms (then -ETIMEDOUT). The
 * check runs once the watch is set, so a change made in between still
 * wakes the wait. -errno when the folder cannot be watched.
 */
int
ladderd_request_wait_folder(const char *dir, int timeout_ms,
    int (*check)(void *arg), void *arg)
{
	uint64_t deadline = ladderd_clock_mono_ms() + (uint64_t)timeout_ms;
	int fd, rc;

	if ((fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0)
		return -errno;
	if (inotify_add_watch(fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		rc = -errno;
		goto out;
	}
	while ((rc = check(arg)) == -EAGAIN) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		uint64_t now = ladderd_clock_mono_ms();
		char buf[4096];

		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		if (poll(&pf, 1, (int)(deadline - now)) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
out:
	close(fd);
	return rc;
}

struct reply_wait {
	const char *spool, *name;
	cJSON **ret_reply;
};

static int
request_check_reply(void *arg)
{
	struct reply_wait *w = arg;
	int rc = request_take_reply(w->spool, w->name, w->ret_reply);

	return rc == -ENOENT ? -EAGAIN : rc;
}

/*
 * Wait up to timeout_ms for the reply to request `name` (inotify on
 * spool/replies, no polling). 0 and *ret_reply (the caller's), -ETIMEDOUT,
 * or another negative errno.
 */
int
ladderd_request_wait(const char *spool, const char *name, int timeout_ms,
    cJSON **ret_reply)
{
	struct reply_wait w = { spool, name, ret_reply };
	char dir[PATH_MAX];
	int rc;

	if ((rc = ladderd_spool_path(spool, "replies", NULL, dir,
		 sizeof(dir))) < 0)
		return rc;
	return ladderd_request_wait_folder(dir, timeout_ms,
	    request_check_reply, &w);
}

/* Remove a request not taken yet: 0 if it was still there. */
int
ladderd_request_withdraw(const char *spool, const char *name)
{
	char path[PATH_MAX];

	if (ladderd_spool_path(spool, "requests", name, path, sizeof(path)) <
	    0)
		return -ENAMETOOLONG;
	return unlink(path) < 0 ? -errno : 0;
}

/*
 * The daemon's inotify descriptor on spool/requests (a new request is
 * renamed in), for its epoll set; replies nobody took are removed (their
 * commands gave up). Returns the descriptor or a negative errno.
 */
int
ladderd_request_watch(const char *spool)
{
	char dir[PATH_MAX], p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd, rc;

	if ((rc = ladderd_spool_path(spool, "replies", NULL, dir,
		 sizeof(dir))) < 0)
		return rc;
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' &&
			    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) <
				(int)sizeof(p))
				(void)unlink(p);
		closedir(d);
	}
	if ((rc = ladderd_spool_path(spool, "requests", NULL, dir,
		 sizeof(dir))) < 0)
		return rc;
	if ((fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0)
		return -errno;
	if (inotify_add_watch(fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static void
request_reply(const char *spool, const char *name, int ok, const char *msg)
{
	char path[PATH_MAX], *text;
	cJSON *r = cJSON_CreateObject();

	if (r == NULL)
		return;
	cJSON_AddBoolToObject(r, "ok", ok);
	cJSON_AddStringToObject(r, "message", msg);
	text = cJSON_Print(r);
	if (text && ladderd_spool_path(spool, "replies", name, path,
			sizeof(path)) == 0)
		(void)ladderd_fsutil_write_atomic(path, text, strlen(text));
	cJSON_free(text);
	cJSON_Delete(r);
}

/*
 * Carry out every waiting request, oldest first (names sort by time):
 * fn(arg, verb, task_id, message, size) returns 1 done, 0 refused, and
 * fills message; the reply is written, then the request removed. The
 * directory is the truth; inotify only says when to look. Returns the
 * number of requests served.
 */
int
ladderd_request_serve(const char *spool, ladderd_request_fn fn, void *arg)
{
	char dir[PATH_MAX], p[PATH_MAX];
	struct dirent **names = NULL;
	int n, served = 0;

	if (ladderd_spool_path(spool, "requests", NULL, dir, sizeof(dir)) < 0 ||
	    (n = scandir(dir, &names, NULL, alphasort)) < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char msg[1024] = "";
		cJSON *r = NULL;
		int ok = 0;

		if (!request_is_name(name) ||
		    snprintf(p, sizeof(p), "%s/%s", dir, name) >=
			(int)sizeof(p))
			continue;
		if (ladderd_ctx_load(p, &r) < 0 ||
		    !ladderd_ctx_valid_name(ladderd_ctx_str(r, "task_id", "")))
			snprintf(msg, sizeof(msg), "unreadable request, or an "
						   "invalid task id");
		else
			ok = fn(arg, ladderd_ctx_str(r, "verb", ""),
			    ladderd_ctx_str(r, "task_id", ""), msg,
			    sizeof(msg));
		request_reply(spool, name, ok, msg);
		(void)unlink(p);
		cJSON_Delete(r);
		served++;
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return served;
}
