/*
 * spool.c - queue markers and the spool's folders (see spool.h). Markers
 * are empty files; a marker's name starts with the arrival time in
 * microseconds (zero-padded) so a sorted listing is arrival order. Nothing
 * here logs; errors are negative errno values.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "fsutil.h"
#include "spool.h"

static const char *const spool_dirs[] = { "tasks", "queue", "active",
	"deferred", "outbox", "tmp", "requests", "replies", NULL };

int
ladderd_spool_path(const char *spool, const char *sub, const char *name,
    char *buf, size_t size)
{
	int n = name ? snprintf(buf, size, "%s/%s/%s", spool, sub, name) :
		       snprintf(buf, size, "%s/%s", spool, sub);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int
ladderd_spool_init(const char *spool)
{
	char p[PATH_MAX];
	int rc;

	for (int i = 0; spool_dirs[i]; i++) {
		if ((rc = ladderd_spool_path(spool, spool_dirs[i], NULL, p,
			 sizeof(p))) < 0 ||
		    (rc = ladderd_fsutil_mkdir_p(p, 0755)) < 0)
			return rc;
	}
	return 0;
}

/*
 * Take the spool's lock (spool/ladderd.pid, flock): one daemon per spool.
 * Returns 0 and the descriptor to keep open, -EBUSY with the owner's pid
 * when another daemon holds it.
 */
int
ladderd_spool_lock(const char *spool, int *ret_fd, long *ret_owner)
{
	char p[PATH_MAX], buf[32];
	int fd, rc;
	ssize_t n;

	if ((rc = ladderd_spool_path(spool, "ladderd.pid", NULL, p,
		 sizeof(p))) < 0)
		return rc;
	if ((fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		*ret_owner = strtol(buf, NULL, 10);
		close(fd);
		return rc;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*ret_fd = fd;
	return 0;
}

/* Add task_id at the tail of the queue. */
int
ladderd_spool_enqueue(const char *spool, const char *task_id)
{
	struct timespec ts;
	char name[160], p[PATH_MAX];
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (snprintf(name, sizeof(name), "%016llu-%s",
		(unsigned long long)ts.tv_sec * 1000000ull +
		    (unsigned long long)ts.tv_nsec / 1000ull,
		task_id) >= (int)sizeof(name))
		return -ENAMETOOLONG;
	if ((rc = ladderd_spool_path(spool, "queue", name, p, sizeof(p))) < 0)
		return rc;
	return ladderd_fsutil_write_atomic(p, "", 0);
}

static int
marker_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ladderd_marker *)a)->name,
	    ((const struct ladderd_marker *)b)->name);
}

/* Parse "<digits>-<rest>" into the number and rest; -EINVAL if not. */
static int
marker_split(const char *name, uint64_t *num, const char **rest)
{
	char *end;

	errno = 0;
	*num = strtoull(name, &end, 10);
	if (errno || end == name || *end != '-')
		return -EINVAL;
	*rest = end + 1;
	return 0;
}

/*
 * The markers of a state folder, sorted (arrival order; for deferred/,
 * due order). The caller frees *ret. Names that are not markers are
 * skipped.
 */
int
ladderd_spool_list(const char *spool, const char *state,
    struct ladderd_marker **ret, size_t *ret_n)
{
	char p[PATH_MAX];
	struct ladderd_marker *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int rc;

	*ret = NULL;
	*ret_n = 0;
	if ((rc = ladderd_spool_path(spool, state, NULL, p, sizeof(p))) < 0)
		return rc;
	if ((d = opendir(p)) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		struct ladderd_marker m = { 0 };
		const char *rest;
		uint64_t num;

		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp."))
			continue;
		if (snprintf(m.name, sizeof(m.name), "%s", de->d_name) >=
			(int)sizeof(m.name) ||
		    marker_split(de->d_name, &num, &rest) < 0)
			continue;
		if (strcmp(state, "deferred") == 0) {
			m.due_ms = num;
			if (marker_split(rest, &num, &rest) < 0)
				continue;
		}
		if (!ladderd_ctx_valid_name(rest))
			continue;
		snprintf(m.task_id, sizeof(m.task_id), "%s", rest);
		if (n == cap) {
			struct ladderd_marker *nv;

			cap = cap ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = m;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), marker_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* fsync spool/<state>/, so an entry renamed into or out of it is durable. */
static int
spool_fsync_state(const char *spool, const char *state)
{
	char dir[PATH_MAX];
	int rc;

	if ((rc = ladderd_spool_path(spool, state, NULL, dir, sizeof(dir))) < 0)
		return rc;
	return ladderd_fsutil_fsync_dir(dir);
}

int
ladderd_spool_move(const char *spool, const char *from_state,
    const char *from_name, const char *to_state, const char *to_name)
{
	char a[PATH_MAX], b[PATH_MAX];
	int rc;

	if ((rc = ladderd_spool_path(spool, from_state, from_name, a,
		 sizeof(a))) < 0 ||
	    (rc = ladderd_spool_path(spool, to_state, to_name, b, sizeof(b))) <
		0)
		return rc;
	if (rename(a, b) < 0)
		return -errno;
	/* The entries that changed are in the two state folders. */
	if ((rc = spool_fsync_state(spool, to_state)) < 0 ||
	    strcmp(from_state, to_state) == 0)
		return rc;
	return spool_fsync_state(spool, from_state);
}

int
ladderd_spool_remove(const char *spool, const char *state, const char *name)
{
	char p[PATH_MAX];
	int rc;

	if ((rc = ladderd_spool_path(spool, state, name, p, sizeof(p))) < 0)
		return rc;
	return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
}

/*
 * Remove the temp files (NAME.tmp.PID, fsutil's durable writes) that a
 * daemon killed mid-write left in a state folder. Only at start-up, under
 * the spool lock: no writer of ours is alive then.
 */
static void
spool_purge_temps(const char *spool, const char *state)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (ladderd_spool_path(spool, state, NULL, dir, sizeof(dir)) < 0 ||
	    (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp.") != NULL)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

/*
 * After a restart: temp files of interrupted writes go, and every active
 * marker goes back to the queue (its job died with the daemon; the task
 * resumes from its checkpoint). Returns the number of markers requeued in
 * *ret_requeued.
 */
int
ladderd_spool_recover(const char *spool, size_t *ret_requeued)
{
	static const char *const states[] = { "queue", "active", "deferred",
		"replies", NULL };
	struct ladderd_marker *v = NULL;
	size_t n = 0, moved = 0;
	int rc;

	for (size_t i = 0; states[i] != NULL; i++)
		spool_purge_temps(spool, states[i]);
	if ((rc = ladderd_spool_list(spool, "active", &v, &n)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (ladderd_spool_move(spool, "active", v[i].name, "queue",
			v[i].name) == 0)
			moved++;
	free(v);
	*ret_requeued = moved;
	return 0;
}
