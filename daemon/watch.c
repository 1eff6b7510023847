/*
 * watch.c - inotify is a hint, the directory scan is the truth.
 *
 * Every watch folder has an inotify watch (IN_CLOSE_WRITE, IN_MOVED_TO,
 * IN_CREATE) and a table of candidate files. An event only marks the
 * folder for a scan and, for close-write/moved-to, marks that file as
 * finished by its writer. A scan lists the folder and records size and
 * mtime of every plain name (dotfiles and partial suffixes are ignored).
 * A candidate is taken when:
 *   - its writer finished (event seen) and, with settle_time > 0, it has
 *     been unchanged for settle_time seconds (network shares);
 *   - it was found by a scan at start-up, after an inotify queue overflow
 *     or after the folder was re-created (no event can be trusted for
 *     those), and it has been unchanged for max(settle_time, 1) seconds;
 *   - with settle_time > 0, it has been unchanged that long (files that
 *     arrive over NFS/SMB without any event).
 * A file still being written with settle_time = 0 is never taken before
 * its close-write. Non-regular files are handed over at once (ingest
 * refuses them). A deleted watch folder is re-watched when it re-appears:
 * its parent is watched for the name meanwhile.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest.h"
#include "log.h"
#include "watch.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | \
	IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define PARENT_MASK (IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)
#define RETRY_US (5u * 1000000u)

struct cand {
	char *name;
	off_t size;
	struct timespec mtime;
	uint64_t stable_since;
	uint64_t not_before; /* after a failed take */
	int finished;	     /* close-write or moved-to seen */
	int untrusted;	     /* found by a start-up/overflow scan */
	int seen;	     /* present in the latest scan */
	int said_waiting;    /* "still open for writing" was logged */
};

struct wfolder {
	char *path, *profile;
	int wd, parent_wd;
	int scan, untrusted_scan;
	struct cand *c;
	size_t n;
};

struct ladderd_watchset {
	int fd;
	int settle_us_is_zero;
	uint64_t settle_us;
	struct wfolder *f;
	size_t n;
	int conf_wd;
	char conf_base[NAME_MAX + 1];
	int conf_changed;
};

static void
watch_add(struct ladderd_watchset *ws, struct wfolder *f)
{
	f->wd = inotify_add_watch(ws->fd, f->path, WATCH_MASK);
	if (f->wd >= 0) {
		f->scan = f->untrusted_scan = 1;
		return;
	}
	log_warn("cannot watch '%s', waiting for it to appear", f->path);
	if (f->parent_wd < 0) {
		char parent[PATH_MAX];
		char *slash;

		snprintf(parent, sizeof(parent), "%s", f->path);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		f->parent_wd = inotify_add_watch(ws->fd, parent, PARENT_MASK);
	}
}

struct ladderd_watchset *
ladderd_watch_new(const struct ladderd_conf *conf, const char *conf_file)
{
	struct ladderd_watchset *ws = calloc(1, sizeof(*ws));

	if (ws == NULL)
		return NULL;
	ws->conf_wd = -1;
	ws->settle_us = (uint64_t)conf->settle_time * 1000000u;
	if ((ws->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		free(ws);
		return NULL;
	}
	ws->f = calloc(conf->nwatches + 1, sizeof(*ws->f));
	if (ws->f == NULL) {
		ladderd_watch_free(ws);
		return NULL;
	}
	for (size_t i = 0; i < conf->nwatches; i++) {
		struct wfolder *f = &ws->f[ws->n++];

		f->path = strdup(conf->watches[i].path);
		f->profile = strdup(conf->watches[i].profile);
		f->wd = f->parent_wd = -1;
		if (f->path == NULL || f->profile == NULL) {
			ladderd_watch_free(ws);
			return NULL;
		}
		watch_add(ws, f);
	}
	if (conf_file) {
		/* Watch the config's folder: editors replace files by rename. */
		char dir[PATH_MAX];
		const char *slash = strrchr(conf_file, '/');

		snprintf(dir, sizeof(dir), "%.*s",
		    slash ? (int)(slash - conf_file) : 1,
		    slash ? conf_file : ".");
		snprintf(ws->conf_base, sizeof(ws->conf_base), "%s",
		    slash ? slash + 1 : conf_file);
		ws->conf_wd = inotify_add_watch(ws->fd, dir[0] ? dir : "/",
		    IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR);
	}
	return ws;
}

void
ladderd_watch_free(struct ladderd_watchset *ws)
{
	if (ws == NULL)
		return;
	for (size_t i = 0; i < ws->n; i++) {
		for (size_t k = 0; k < ws->f[i].n; k++)
			free(ws->f[i].c[k].name);
		free(ws->f[i].c);
		free(ws->f[i].path);
		free(ws->f[i].profile);
	}
	free(ws->f);
	if (ws->fd >= 0)
		close(ws->fd);
	free(ws);
}

int
ladderd_watch_fd(const struct ladderd_watchset *ws)
{
	return ws->fd;
}

int
ladderd_watch_conf_changed(struct ladderd_watchset *ws)
{
	int c = ws->conf_changed;

	ws->conf_changed = 0;
	return c;
}

static struct cand *
cand_get(struct wfolder *f, const char *name, int create)
{
	struct cand *nc;

	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->c[i].name, name) == 0)
			return &f->c[i];
	if (!create)
		return NULL;
	if ((nc = realloc(f->c, (f->n + 1) * sizeof(*nc))) == NULL)
		return NULL;
	f->c = nc;
	memset(&nc[f->n], 0, sizeof(*nc));
	if ((nc[f->n].name = strdup(name)) == NULL)
		return NULL;
	return &nc[f->n++];
}

static void
cand_drop(struct wfolder *f, size_t i)
{
	free(f->c[i].name);
	f->c[i] = f->c[--f->n];
}

/*
 * A writer finished `name` (close-write or moved-to): the next scan may
 * take it. A temporary name never is; that is said here, once per
 * finished write rather than at every scan (tests wait for the line).
 */
static void
watch_finished(struct wfolder *f, const char *name)
{
	struct cand *c;

	if (ladderd_ingest_is_temporary(name)) {
		log_debug("'%s/%s': temporary name, ignored", f->path, name);
		return;
	}
	if ((c = cand_get(f, name, 1)) != NULL)
		c->finished = 1;
}

/* Drain the inotify queue; returns 1 if anything happened. */
int
ladderd_watch_read(struct ladderd_watchset *ws)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int any = 0;

	for (;;) {
		ssize_t len = read(ws->fd, buf, sizeof(buf));

		if (len <= 0)
			break;
		any = 1;
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				log_warnx("inotify queue overflow: rescanning "
					  "every watch folder");
				for (size_t i = 0; i < ws->n; i++)
					ws->f[i].scan = ws->f[i].untrusted_scan =
					    1;
				continue;
			}
			if (ev->wd == ws->conf_wd && ev->len &&
			    strcmp(ev->name, ws->conf_base) == 0)
				ws->conf_changed = 1;
			for (size_t i = 0; i < ws->n; i++) {
				struct wfolder *f = &ws->f[i];

				if (ev->wd == f->wd) {
					if (ev->mask & (IN_DELETE_SELF |
							   IN_MOVE_SELF |
							   IN_IGNORED)) {
						log_warnx("watch folder '%s' "
							  "went away",
						    f->path);
						inotify_rm_watch(ws->fd, f->wd);
						f->wd = -1;
						watch_add(ws, f);
						continue;
					}
					f->scan = 1;
					if (ev->len &&
					    (ev->mask &
						(IN_CLOSE_WRITE | IN_MOVED_TO)))
						watch_finished(f, ev->name);
				} else if (ev->wd == f->parent_wd && f->wd < 0 &&
				    ev->len) {
					const char *base = strrchr(f->path, '/');

					if (base && strcmp(base + 1, ev->name) ==
						0) {
						log_info("watch folder '%s' is "
							 "back",
						    f->path);
						watch_add(ws, f);
					}
				}
			}
		}
	}
	return any;
}

static void
watch_scan(struct wfolder *f, uint64_t now)
{
	DIR *d;
	struct dirent *de;

	for (size_t i = 0; i < f->n; i++)
		f->c[i].seen = 0;
	if ((d = opendir(f->path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		struct cand *c;
		char p[PATH_MAX];

		if (ladderd_ingest_is_temporary(de->d_name))
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", f->path, de->d_name) >=
			(int)sizeof(p) ||
		    lstat(p, &st) < 0 || S_ISDIR(st.st_mode))
			continue;
		if ((c = cand_get(f, de->d_name, 1)) == NULL)
			continue;
		c->seen = 1;
		if (f->untrusted_scan && !c->finished)
			c->untrusted = 1;
		if (!S_ISREG(st.st_mode)) {
			c->finished = 1; /* hand over at once: refused */
			c->size = -1;
			continue;
		}
		if (c->stable_since == 0 || c->size != st.st_size ||
		    c->mtime.tv_sec != st.st_mtim.tv_sec ||
		    c->mtime.tv_nsec != st.st_mtim.tv_nsec) {
			c->size = st.st_size;
			c->mtime = st.st_mtim;
			c->stable_since = now;
		}
	}
	closedir(d);
	for (size_t i = 0; i < f->n;)
		if (!f->c[i].seen)
			cand_drop(f, i);
		else
			i++;
	f->scan = f->untrusted_scan = 0;
}

/*
 * Scan folders marked for it and hand over every candidate that is
 * ready. Returns the earliest time (monotonic µs) at which a waiting
 * candidate may become ready, or 0 when none waits (no timer needed).
 */
uint64_t
ladderd_watch_collect(struct ladderd_watchset *ws, uint64_t now,
    ladderd_watch_take_fn take, void *arg)
{
	uint64_t next = 0;

	for (size_t i = 0; i < ws->n; i++) {
		struct wfolder *f = &ws->f[i];
		int pending = 0;

		if (f->wd < 0)
			continue;
		for (size_t k = 0; k < f->n; k++)
			pending |= f->c[k].untrusted || ws->settle_us > 0;
		/* Waiting candidates need fresh size/mtime readings. */
		if (f->scan || pending)
			watch_scan(f, now);
		for (size_t k = 0; k < f->n;) {
			struct cand *c = &f->c[k];
			uint64_t need = 0, ready_at;
			int eligible;

			if (c->size < 0) {
				eligible = 1;
			} else if (c->untrusted) {
				need = ws->settle_us > 1000000u ? ws->settle_us :
								  1000000u;
				eligible = 1;
			} else if (c->finished) {
				need = ws->settle_us;
				eligible = 1;
			} else {
				need = ws->settle_us;
				eligible = ws->settle_us > 0;
			}
			if (!eligible) {
				if (!c->said_waiting)
					log_debug("'%s/%s': still open for "
						  "writing, waiting for its "
						  "close",
					    f->path, c->name);
				c->said_waiting = 1;
				k++;
				continue;
			}
			ready_at = c->stable_since + need;
			if (c->not_before > ready_at)
				ready_at = c->not_before;
			if (ready_at > now) {
				if (next == 0 || ready_at < next)
					next = ready_at;
				k++;
				continue;
			}
			if (take(arg, f->path, c->name, f->profile) < 0) {
				c->not_before = now + RETRY_US;
				if (next == 0 || c->not_before < next)
					next = c->not_before;
				k++;
				continue;
			}
			cand_drop(f, k);
		}
	}
	return next;
}
