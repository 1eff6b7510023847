/*
 * outbox.c - the notify worker (`ladderd notify`): it owns
 * <spool>/outbox/ once an entry is there, and hands each entry to its
 * transport (transport.h). Delivered: the entry is unlinked. Retry later:
 * the entry is tried again after an exponential backoff with jitter.
 * Give up, an entry older than notify.max_age, or a file that is not a
 * valid entry: renamed into outbox/dead/ with a warning, never deleted.
 *
 * Queues: per task, one per transport destination: the operator's webhook
 * ("<task>.<seq>.json"), a manifest's own webhook
 * ("<task>@manifest.<seq>.json") and AMQP ("<task>@amqp.<seq>.json"). So a
 * dead receiver delays only its own queues, never the broker's, and the
 * other way round.
 *
 * Invariants: per queue only the entry with the lowest seq is ever handed
 * to a transport (and at most one attempt of it is in flight), so seq N+1
 * never reaches a receiver before seq N was delivered (or buried). The
 * directory is the truth and inotify only a hint to rescan it. Delivery is
 * at least once: a crash between the transport's "delivered" and the
 * unlink sends the event again, with the same id.
 *
 * SIGHUP (the supervisor sends it after a reload) re-reads the config
 * file: each transport takes its new settings, and entries waiting in
 * backoff are tried again at once.
 *
 * Fails (returns a negative errno) only while starting: the outbox cannot
 * be created, scanned or watched, a transport cannot be set up. Later
 * errors are logged and retried.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "amqp.h"
#include "../stages/crashpoint.h"
#include "clock.h"
#include "ctx.h"
#include "fsutil.h"
#include "log.h"
#include "outbox.h"
#include "transport.h"
#include "webhook.h"

#define OUTBOX_MAX_ENTRY (16 * 1024 * 1024) /* bytes of one outbox file */
#define OUTBOX_MAX_TASKS 4096		    /* queues tracked at once */
#define OUTBOX_TASK_MAX 64		    /* task id length, README "Drops" */
#define OUTBOX_SUFFIX_MAX 16		    /* "@manifest", "@amqp" */
#define OUTBOX_QUEUE_MAX (OUTBOX_TASK_MAX + OUTBOX_SUFFIX_MAX)
#define OUTBOX_DEST_MAX 300
#define OUTBOX_MAX_BACKOFF_US (300ULL * 1000000)
#define OUTBOX_RESCAN_US (5ULL * 1000000) /* after a failed scan */
#define OUTBOX_STATS_US 1000000ULL	  /* _notify.json at most 1/s */
#define OUTBOX_INOTIFY_READS 64		  /* per wake-up; the rest wakes us */
#define OUTBOX_MAX_WAIT_MS 3600000	  /* idle: inotify or a signal wakes */
#define OUTBOX_MASK (IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_MOVE_SELF)

/* The queue kinds, by the suffix of their entries' names. */
enum outbox_kind {
	OUTBOX_OPERATOR, /* "" */
	OUTBOX_MANIFEST, /* "@manifest" */
	OUTBOX_AMQP,	 /* "@amqp" */
	OUTBOX__KINDS,
};

static const char *const outbox_suffix[OUTBOX__KINDS] = { "", "@manifest",
	"@amqp" };
/* How the log names a queue's deliveries (tests grep the first two). */
static const char *const outbox_label[OUTBOX__KINDS] = { "webhook",
	"manifest webhook", "amqp" };
/* Which transport serves a kind. */
enum { TR_WEBHOOK, TR_AMQP, TR__COUNT };
static const int outbox_transport_of[OUTBOX__KINDS] = { TR_WEBHOOK,
	TR_WEBHOOK, TR_AMQP };

/* The head (lowest seq) of one queue. */
struct outbox_task {
	char queue[OUTBOX_QUEUE_MAX]; /* task, plus its kind's suffix */
	char task[OUTBOX_TASK_MAX + 1];
	enum outbox_kind kind;
	char name[NAME_MAX + 1]; /* its file name in the outbox */
	long seq;
	uint64_t due;	   /* monotonic us of the next attempt, 0 = now */
	unsigned attempts; /* failed attempts of this entry */
	bool done;	   /* sent or buried; the next scan says what follows */
	bool in_flight;
	char dest[OUTBOX_DEST_MAX]; /* the transport's key, "" = not known */
};

/* What a delivery in flight needs to find its queue again. */
struct outbox_cookie {
	char queue[OUTBOX_QUEUE_MAX];
	long seq;
	uint64_t created_ms;
};

/* Counters per transport, for _notify.json (and so _metrics.prom). */
struct outbox_stats {
	long backlog;	/* entries waiting, as of the last scan and since */
	long delivered; /* since the worker started */
	long failed;	/* failed attempts */
	long dead;	/* entries given up on */
};

struct outbox {
	char outbox[PATH_MAX], dead[PATH_MAX], statfile[PATH_MAX];
	const char *conf_file; /* re-read on SIGHUP; NULL: the CLI default */
	long max_age;	       /* notify.max_age, seconds */
	uint64_t backoff;      /* first retry delay, us */
	uint64_t rng;	       /* xorshift state for the jitter */
	int ifd, wd, sfd;
	struct ladderd_transport tr[TR__COUNT]; /* .state NULL: not set up */
	struct outbox_stats stats[TR__COUNT];
	unsigned long tr_changes[TR__COUNT]; /* last seen tr->changes() */
	bool stats_dirty;
	bool tell_parent; /* started by the supervisor: SIGUSR1 it */
	uint64_t stats_at; /* monotonic us of the last _notify.json */
	struct outbox_task *tasks; /* sorted by queue */
	size_t ntasks;
	bool need_scan;
	uint64_t scan_due; /* retry a failed scan then, 0 = not needed */
	int stop;	   /* the signal that asked us to stop */
	bool reload;
};

/* xorshift64: jitter needs no quality, only no shared state. */
static uint64_t
outbox_random(struct outbox *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static bool
outbox_is_json(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && strcmp(name + n - 5, ".json") == 0;
}

static struct outbox_stats *
outbox_stats_of(struct outbox *w, const struct outbox_task *t)
{
	w->stats_dirty = true;
	return &w->stats[outbox_transport_of[t->kind]];
}

/*
 * Split "<task>[@manifest|@amqp].<seq>.json" (the seq zero-padded by the
 * writer). Returns 0, or -EINVAL when the name is not an outbox entry's.
 */
static int
outbox_parse_name(const char *name, struct outbox_task *t)
{
	size_t n = strlen(name), qlen;
	const char *dot, *p, *at;
	long seq = 0;

	if (!outbox_is_json(name))
		return -EINVAL;
	n -= 5;
	if ((dot = memrchr(name, '.', n)) == NULL || dot == name)
		return -EINVAL;
	qlen = (size_t)(dot - name);
	if (qlen >= sizeof(t->queue) || name + n - (dot + 1) < 1 ||
	    name + n - (dot + 1) > 18)
		return -EINVAL;
	for (p = dot + 1; p < name + n; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		seq = seq * 10 + (*p - '0');
	}
	memcpy(t->queue, name, qlen);
	t->queue[qlen] = '\0';
	t->kind = OUTBOX_OPERATOR;
	/* '@' is in no task id: what follows it names the queue's kind. */
	if ((at = strchr(t->queue, '@')) != NULL) {
		int k;

		for (k = OUTBOX_MANIFEST; k < OUTBOX__KINDS; k++)
			if (strcmp(at, outbox_suffix[k]) == 0)
				break;
		if (k == OUTBOX__KINDS)
			return -EINVAL;
		t->kind = (enum outbox_kind)k;
		qlen = (size_t)(at - t->queue);
	}
	if (qlen >= sizeof(t->task))
		return -EINVAL;
	memcpy(t->task, name, qlen);
	t->task[qlen] = '\0';
	if (!ladderd_ctx_valid_name(t->task))
		return -EINVAL;
	t->seq = seq;
	(void)snprintf(t->name, sizeof(t->name), "%s", name);
	return 0;
}

/* Binary search by queue: true if found; *ret_pos = index or insertion. */
static bool
outbox_lookup(const struct outbox_task *tasks, size_t n, const char *queue,
    size_t *ret_pos)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(tasks[mid].queue, queue);

		if (c == 0) {
			*ret_pos = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_pos = lo;
	return false;
}

/*
 * Move outbox/NAME to outbox/dead/NAME, saying why: the entry is given up
 * on, so the operator should look. `t` (NULL when the name is not an
 * entry's) names the task in the log. Returns 0 or a negative errno; both
 * outcomes are logged.
 */
static int
outbox_bury(struct outbox *w, const struct outbox_task *t, const char *name,
    const char *why)
{
	char from[PATH_MAX], to[PATH_MAX], who[OUTBOX_TASK_MAX + 64] = "";
	int rc;

	if (t != NULL)
		(void)snprintf(who, sizeof(who), "task=%s seq=%ld%s: ", t->task,
		    t->seq, t->kind == OUTBOX_MANIFEST ? " (manifest webhook)" :
			t->kind == OUTBOX_AMQP		   ? " (amqp)" :
							     "");
	if (snprintf(from, sizeof(from), "%s/%s", w->outbox, name) >=
		(int)sizeof(from) ||
	    snprintf(to, sizeof(to), "%s/%s", w->dead, name) >=
		(int)sizeof(to)) {
		log_warnx("%scannot move '%s' to dead/: path too long", who,
		    name);
		return -ENAMETOOLONG;
	}
	if (rename(from, to) < 0) {
		rc = -errno;
		log_warnx("%scannot move '%s' to '%s': %s", who, from, to,
		    strerror(-rc));
		return rc;
	}
	/*
	 * The new name first: a crash in between leaves the entry in dead/
	 * (or, if neither sync happened, where it was), never nowhere.
	 */
	(void)ladderd_fsutil_fsync_dir(w->dead);
	(void)ladderd_fsutil_fsync_dir(w->outbox);
	log_warnx("%s%s given up, '%s' moved to '%s': %s", who,
	    t != NULL ? outbox_label[t->kind] : "delivery", name, w->dead, why);
	if (t != NULL) {
		struct outbox_stats *st = outbox_stats_of(w, t);

		st->dead++;
		if (st->backlog > 0)
			st->backlog--;
	}
	return 0;
}

/* Create the outbox (and dead/) and watch it, if not done yet. */
static int
outbox_prepare(struct outbox *w)
{
	int rc;

	if ((rc = ladderd_fsutil_mkdir_p(w->dead, 0755)) < 0)
		return rc;
	if (w->wd < 0) {
		/* IN_ONLYDIR: a symlink swapped in for the outbox is refused */
		w->wd = inotify_add_watch(w->ifd, w->outbox,
		    OUTBOX_MASK | IN_ONLYDIR);
		if (w->wd < 0)
			return -errno;
	}
	return 0;
}

/*
 * Rebuild the queue list from the directory: per queue, the entry with the
 * lowest seq. A queue whose head is unchanged keeps its backoff and its
 * delivery in flight. Names ending in ".json" that are not entry names are
 * buried. Returns 0 or a negative errno (the old list is kept and a rescan
 * is scheduled).
 */
static int
outbox_scan(struct outbox *w)
{
	struct outbox_task *fresh = NULL;
	size_t n = 0, cap = 0;
	long backlog[TR__COUNT] = { 0 };
	DIR *d = NULL;
	struct dirent *de;
	bool full = false;
	int rc;

	w->scan_due = 0;
	if ((rc = outbox_prepare(w)) < 0)
		goto out;
	if ((d = opendir(w->outbox)) == NULL) {
		rc = -errno;
		goto out;
	}
	/* Bounded by the directory's size; errno = 0 tells end from error. */
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct outbox_task t;
		size_t pos;

		if (!outbox_is_json(de->d_name))
			continue; /* temp files, dead/, anything else */
		memset(&t, 0, sizeof(t));
		if (outbox_parse_name(de->d_name, &t) < 0) {
			(void)outbox_bury(w, NULL, de->d_name,
			    "not an outbox entry name");
			continue;
		}
		backlog[outbox_transport_of[t.kind]]++;
		if (outbox_lookup(fresh, n, t.queue, &pos)) {
			if (t.seq < fresh[pos].seq)
				fresh[pos] = t;
			continue;
		}
		if (n == OUTBOX_MAX_TASKS) {
			/* Skipping a whole queue keeps the order intact. */
			full = true;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct outbox_task *nt;

			if (ncap > OUTBOX_MAX_TASKS)
				ncap = OUTBOX_MAX_TASKS;
			if ((nt = realloc(fresh, ncap * sizeof(*nt))) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			fresh = nt;
			cap = ncap;
		}
		memmove(&fresh[pos + 1], &fresh[pos],
		    (n - pos) * sizeof(*fresh));
		fresh[pos] = t;
		n++;
	}
	if (errno != 0) {
		rc = -errno;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t pos;
		const struct outbox_task *o;

		if (!outbox_lookup(w->tasks, w->ntasks, fresh[i].queue, &pos))
			continue;
		o = &w->tasks[pos];
		if (o->seq != fresh[i].seq || (o->done && !o->in_flight))
			continue;
		fresh[i].due = o->due;
		fresh[i].attempts = o->attempts;
		fresh[i].in_flight = o->in_flight;
		fresh[i].done = o->done;
		memcpy(fresh[i].dest, o->dest, sizeof(o->dest));
	}
	free(w->tasks);
	w->tasks = fresh;
	w->ntasks = n;
	fresh = NULL;
	for (int i = 0; i < TR__COUNT; i++)
		if (w->stats[i].backlog != backlog[i]) {
			w->stats[i].backlog = backlog[i];
			w->stats_dirty = true;
		}
	/*
	 * XXX the queues left out wait until a tracked one drains (which
	 * rescans); if all tracked receivers are down, that is until their
	 * entries reach max_age.
	 */
	if (full)
		log_warnx("more than %d queues have events pending; the "
			  "others wait for a later scan",
		    OUTBOX_MAX_TASKS);
	rc = 0;
out:
	if (d != NULL)
		closedir(d);
	free(fresh);
	if (rc < 0)
		w->scan_due = ladderd_clock_mono_us() + OUTBOX_RESCAN_US;
	return rc;
}

/*
 * The head of `t` is gone (sent or buried): make seq+1 the head when its
 * file is there (the common case, no rescan needed), else let a rescan
 * find what follows, if anything.
 */
static void
outbox_advance(struct outbox *w, struct outbox_task *t)
{
	char name[NAME_MAX + 1], path[PATH_MAX];
	struct stat st;

	t->done = true;
	t->in_flight = false;
	if (snprintf(name, sizeof(name), "%s.%010ld.json", t->queue,
		t->seq + 1) < (int)sizeof(name) &&
	    snprintf(path, sizeof(path), "%s/%s", w->outbox, name) <
		(int)sizeof(path) &&
	    stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		(void)snprintf(t->name, sizeof(t->name), "%s", name);
		t->seq++;
		t->due = 0;
		t->attempts = 0;
		t->done = false;
		return;
	}
	w->need_scan = true;
}

/* Schedule the next attempt of `t` and say why this one failed. */
static void
outbox_failed(struct outbox *w, struct outbox_task *t, const char *why)
{
	unsigned shift = t->attempts < 20 ? t->attempts : 20;
	uint64_t delay = w->backoff << shift;

	t->attempts++;
	t->in_flight = false;
	outbox_stats_of(w, t)->failed++;
	if (delay > OUTBOX_MAX_BACKOFF_US)
		delay = OUTBOX_MAX_BACKOFF_US;
	/* +-20%: entries that failed together must not retry in lockstep. */
	delay = delay * (80 + outbox_random(w) % 41) / 100;
	t->due = ladderd_clock_mono_us() + delay;
	log_warnx("task=%s seq=%ld: %s delivery failed: %s; attempt %u, "
		  "next in %.1f s",
	    t->task, t->seq, outbox_label[t->kind], why, t->attempts,
	    (double)delay / 1e6);
}

/* Bury the head of `t` and go on with the queue, or retry burying later. */
static void
outbox_give_up(struct outbox *w, struct outbox_task *t, const char *why)
{
	t->in_flight = false;
	if (outbox_bury(w, t, t->name, why) == 0)
		outbox_advance(w, t);
	else
		outbox_failed(w, t, "cannot move it to dead/");
}

/* The head of `t` was delivered: remove it, go on with the queue. */
static void
outbox_delivered(struct outbox *w, struct outbox_task *t, const char *how,
    uint64_t created_ms)
{
	char path[PATH_MAX], why[PATH_MAX + 64];
	struct outbox_stats *st;
	uint64_t now = ladderd_clock_wall_ms();
	double ms = created_ms > 0 && now >= created_ms ?
	    (double)(now - created_ms) : -1;

	LADDERD_CRASH_POINT("webhook.delivered", NULL);
	if (snprintf(path, sizeof(path), "%s/%s", w->outbox, t->name) <
		(int)sizeof(path) &&
	    unlink(path) < 0 && errno != ENOENT) {
		/* Backoff, or we would resend it in a tight loop. */
		(void)snprintf(why, sizeof(why),
		    "delivered, but cannot remove '%s': %s", t->name,
		    strerror(errno));
		outbox_failed(w, t, why);
		return;
	}
	st = outbox_stats_of(w, t);
	st->delivered++;
	if (st->backlog > 0)
		st->backlog--;
	if (t->attempts > 0)
		log_info("task=%s seq=%ld: %s delivered (%s) after %u failed "
			 "attempts",
		    t->task, t->seq, outbox_label[t->kind], how, t->attempts);
	else
		log_debug("task=%s seq=%ld: %s delivered (%s) %.0f ms after "
			  "it was written",
		    t->task, t->seq, outbox_label[t->kind], how, ms);
	outbox_advance(w, t);
}

/* Apply a transport's result to the head of `t`. */
static void
outbox_result(struct outbox *w, struct outbox_task *t,
    enum ladderd_delivery res, const char *reason, uint64_t created_ms)
{
	t->in_flight = false;
	switch (res) {
	case LADDERD_DELIVERY_DONE:
		outbox_delivered(w, t, reason, created_ms);
		break;
	case LADDERD_DELIVERY_RETRY:
		outbox_failed(w, t, reason);
		break;
	case LADDERD_DELIVERY_GIVE_UP:
		outbox_give_up(w, t, reason);
		break;
	}
}

/*
 * Start one delivery attempt of the head of `t`, unless its transport has
 * no room or is backing off (then t->due says when to look again, or a
 * finishing delivery will).
 */
static void
outbox_start(struct outbox *w, struct outbox_task *t, uint64_t now)
{
	struct ladderd_transport *tr = &w->tr[outbox_transport_of[t->kind]];
	char path[PATH_MAX], reason[2048];
	struct outbox_cookie *cookie = NULL;
	struct ladderd_outbox_event ev = { 0 };
	enum ladderd_delivery res;
	cJSON *entry = NULL;
	char *text = NULL;
	uint64_t due;
	double created;
	int rc;

	if (tr->state != NULL && !tr->may_start(tr->state, t->dest, now, &due))
		goto out;
	if (snprintf(path, sizeof(path), "%s/%s", w->outbox, t->name) >=
	    (int)sizeof(path)) {
		outbox_failed(w, t, "outbox path too long");
		goto out;
	}
	if ((rc = ladderd_fsutil_read(path, OUTBOX_MAX_ENTRY, &text, NULL)) <
	    0) {
		if (rc == -ENOENT) {
			/* Taken away behind our back: rescan. */
			t->done = true;
			w->need_scan = true;
		} else if (rc == -EFBIG) {
			outbox_give_up(w, t, "larger than 16 MiB");
		} else {
			(void)snprintf(reason, sizeof(reason),
			    "cannot read '%s': %s", t->name, strerror(-rc));
			outbox_failed(w, t, reason);
		}
		goto out;
	}
	entry = cJSON_Parse(text);
	ev.task = t->task;
	ev.seq = t->seq;
	ev.manifest = t->kind == OUTBOX_MANIFEST;
	ev.url = ladderd_ctx_str(entry, "url", NULL);
	ev.id = ladderd_ctx_str(entry, "id", NULL);
	ev.body = ladderd_ctx_str(entry, "body", NULL);
	created = ladderd_ctx_num(entry, "created", -1);
	ev.created_ms = (uint64_t)ladderd_ctx_num(entry, "created_ms",
	    created > 0 ? created * 1000 : 0);
	if (ev.url == NULL || ev.id == NULL || ev.body == NULL ||
	    created < 0) {
		outbox_give_up(w, t,
		    "not a valid entry (url, id, body, created)");
		goto out;
	}
	ev.bodylen = strlen(ev.body);
	if ((double)time(NULL) - created > (double)w->max_age) {
		(void)snprintf(reason, sizeof(reason),
		    "older than notify.max_age (%ld s), %u failed attempts",
		    w->max_age, t->attempts);
		outbox_give_up(w, t, reason);
		goto out;
	}
	if (tr->state == NULL) {
		/*
		 * Written while the transport was configured, and it is not
		 * now: nobody would ever send it.
		 */
		outbox_give_up(w, t, t->kind == OUTBOX_AMQP ?
			"notify.amqp is not configured" :
			"no such transport");
		goto out;
	}
	if ((cookie = calloc(1, sizeof(*cookie))) == NULL) {
		outbox_failed(w, t, "out of memory");
		goto out;
	}
	memcpy(cookie->queue, t->queue, sizeof(cookie->queue));
	cookie->seq = t->seq;
	cookie->created_ms = ev.created_ms;
	reason[0] = '\0';
	rc = tr->start(tr->state, &ev, cookie, t->dest, sizeof(t->dest), &res,
	    reason, sizeof(reason));
	if (rc == -EAGAIN)
		goto out;
	if (rc == 1) {
		outbox_result(w, t, res, reason, ev.created_ms);
		goto out;
	}
	if (rc < 0) {
		outbox_failed(w, t, strerror(-rc));
		goto out;
	}
	cookie = NULL; /* the transport hands it back with the result */
	t->in_flight = true;
out:
	free(cookie);
	cJSON_Delete(entry);
	free(text);
}

/* A delivery ended: what follows for its queue. */
static void
outbox_finish(struct outbox *w, struct outbox_cookie *c,
    enum ladderd_delivery res, const char *reason)
{
	size_t pos;

	if (!outbox_lookup(w->tasks, w->ntasks, c->queue, &pos) ||
	    w->tasks[pos].seq != c->seq || !w->tasks[pos].in_flight)
		return; /* the entry went away meanwhile; a scan sorts it out */
	outbox_result(w, &w->tasks[pos], res, reason, c->created_ms);
}

/* Drain the inotify queue (bounded); events only decide to rescan. */
static void
outbox_read_events(struct outbox *w)
{
	char buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));

	for (int r = 0; r < OUTBOX_INOTIFY_READS; r++) {
		ssize_t n = read(w->ifd, buf, sizeof(buf));
		const char *p;

		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				log_warn("cannot read inotify events, "
					 "rescanning");
				w->need_scan = true;
			}
			return;
		}
		for (p = buf; p < buf + n;) {
			const struct inotify_event *ev =
			    (const struct inotify_event *)(const void *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				w->need_scan = true;
			} else if (ev->wd == w->wd &&
			    (ev->mask & (IN_IGNORED | IN_MOVE_SELF))) {
				/*
				 * The outbox was removed or renamed: watch
				 * the new one (the scan recreates it).
				 */
				if (ev->mask & IN_MOVE_SELF)
					(void)inotify_rm_watch(w->ifd, w->wd);
				w->wd = -1;
				w->need_scan = true;
			} else if (ev->len > 0 && outbox_is_json(ev->name)) {
				w->need_scan = true;
			}
		}
	}
}

/* Start an attempt for every queue that is due: bounded by the queues. */
static void
outbox_run_due(struct outbox *w)
{
	uint64_t now = ladderd_clock_mono_us();

	for (size_t i = 0; i < w->ntasks && !w->stop; i++) {
		struct outbox_task *t = &w->tasks[i];

		if (!t->done && !t->in_flight && t->due <= now)
			outbox_start(w, t, now);
	}
}

/* Monotonic us of the earliest pending work, UINT64_MAX if none. */
static uint64_t
outbox_next_due(struct outbox *w)
{
	uint64_t next = w->scan_due ? w->scan_due : UINT64_MAX;
	uint64_t now = ladderd_clock_mono_us();

	if (w->need_scan || w->reload)
		return 0;
	if (w->stats_dirty) {
		uint64_t at = w->stats_at + OUTBOX_STATS_US;

		if (at < next)
			next = at;
	}
	for (int i = 0; i < TR__COUNT; i++) {
		struct ladderd_transport *tr = &w->tr[i];

		if (tr->state != NULL && tr->next_due != NULL) {
			uint64_t at = tr->next_due(tr->state);

			if (at < next)
				next = at;
		}
	}
	for (size_t i = 0; i < w->ntasks; i++) {
		const struct outbox_task *t = &w->tasks[i];
		struct ladderd_transport *tr =
		    &w->tr[outbox_transport_of[t->kind]];
		uint64_t at = t->due, dd;

		if (t->done || t->in_flight)
			continue;
		if (tr->state != NULL &&
		    !tr->may_start(tr->state, t->dest, now, &dd)) {
			if (dd == UINT64_MAX)
				continue; /* a finishing delivery wakes us */
			if (dd > at)
				at = dd;
		}
		if (at < next)
			next = at;
	}
	return next;
}

/*
 * <status>/_notify.json: what the worker knows of each transport, for
 * _daemon.json and _metrics.prom (the supervisor reads it). At most once
 * a second, and only when something changed. Best effort: a failure is
 * retried with the next change.
 */
static void
outbox_write_stats(struct outbox *w, bool force)
{
	cJSON *o = NULL, *trs;
	char *text = NULL;
	uint64_t now = ladderd_clock_mono_us();

	if (w->statfile[0] == '\0' || (!w->stats_dirty && !force) ||
	    (!force && now < w->stats_at + OUTBOX_STATS_US))
		return;
	if ((o = cJSON_CreateObject()) == NULL)
		return;
	cJSON_AddNumberToObject(o, "pid", (double)getpid());
	cJSON_AddNumberToObject(o, "time", (double)time(NULL));
	trs = cJSON_AddObjectToObject(o, "transports");
	for (int i = 0; trs != NULL && i < TR__COUNT; i++) {
		struct ladderd_transport *tr = &w->tr[i];
		cJSON *t;

		if (tr->state == NULL)
			continue;
		if ((t = cJSON_AddObjectToObject(trs, tr->name)) == NULL)
			break;
		cJSON_AddNumberToObject(t, "backlog",
		    (double)w->stats[i].backlog);
		cJSON_AddNumberToObject(t, "delivered",
		    (double)w->stats[i].delivered);
		cJSON_AddNumberToObject(t, "failed",
		    (double)w->stats[i].failed);
		cJSON_AddNumberToObject(t, "dead", (double)w->stats[i].dead);
		if (tr->describe != NULL)
			tr->describe(tr->state, t);
	}
	if ((text = cJSON_Print(o)) != NULL &&
	    ladderd_fsutil_write_atomic(w->statfile, text, strlen(text)) ==
		0) {
		w->stats_dirty = false;
		w->stats_at = now;
		/* The supervisor folds it into _daemon.json and metrics. */
		if (w->tell_parent)
			(void)kill(getppid(), SIGUSR1);
	}
	cJSON_free(text);
	cJSON_Delete(o);
}

/* Set up transport `i` from `conf` if it is configured. */
static int
outbox_transport_new(struct outbox *w, int i, const struct ladderd_conf *conf)
{
	switch (i) {
	case TR_WEBHOOK:
		/* Always: a manifest's or an old entry's URL may need it. */
		return ladderd_webhook_new(conf, w->backoff, &w->tr[i]);
	case TR_AMQP:
		if (ladderd_ctx_str(conf->notify, "amqp.url", "")[0] == '\0')
			return 0;
		return ladderd_amqp_new(conf, w->backoff, &w->tr[i]);
	}
	return -EINVAL;
}

/*
 * SIGHUP: the config file again. New settings apply to the next attempt;
 * queues waiting in backoff are tried at once (the change may be what
 * they waited for). A bad file keeps the old settings.
 */
static void
outbox_reload(struct outbox *w)
{
	struct ladderd_conf *c = NULL;
	char err[2048];
	int rc = 0;

	w->reload = false;
	if (ladderd_conf_load_cli(w->conf_file, &c, err, sizeof(err)) < 0) {
		log_warnx("notify worker: config not reloaded, keeping the "
			  "running one: %s",
		    err);
		return;
	}
	for (int i = 0; i < TR__COUNT && rc == 0; i++) {
		struct ladderd_transport *tr = &w->tr[i];
		bool want = i == TR_WEBHOOK ||
		    ladderd_ctx_str(c->notify, "amqp.url", "")[0] != '\0';

		if (tr->state != NULL && want)
			rc = tr->reload(tr->state, c);
		else if (tr->state == NULL && want)
			rc = outbox_transport_new(w, i, c);
		else if (tr->state != NULL) {
			tr->free(tr->state);
			memset(tr, 0, sizeof(*tr));
		}
	}
	if (rc == 0)
		w->max_age = (long)ladderd_ctx_num(c->notify, "max_age", 86400);
	ladderd_conf_free(c);
	if (rc < 0) {
		log_warnx("notify worker: config not reloaded, keeping the "
			  "running one");
		return;
	}
	for (size_t i = 0; i < w->ntasks; i++) {
		if (!w->tasks[i].in_flight)
			w->tasks[i].dest[0] = '\0'; /* the URL may change */
		w->tasks[i].due = 0;
	}
	w->stats_dirty = true;
	log_info("notify worker: config reloaded");
}

/* Drain the signalfd: a stop, or a reload. */
static void
outbox_read_signals(struct outbox *w)
{
	struct signalfd_siginfo si;

	/* Bounded: a few signals at most are pending (they coalesce). */
	for (int i = 0; i < 16; i++) {
		if (read(w->sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			return;
		if (si.ssi_signo == SIGHUP)
			w->reload = true;
		else
			w->stop = (int)si.ssi_signo;
	}
}

/* Paths, backoff, the transports. Logs why it fails. */
static int
outbox_setup(struct outbox *w, const struct ladderd_conf *conf)
{
	const char *env = getenv("LADDERD_WEBHOOK_BACKOFF_MS");
	long ms = 1000;
	int rc;

	if (snprintf(w->outbox, sizeof(w->outbox), "%s/outbox", conf->spool) >=
		(int)sizeof(w->outbox) ||
	    snprintf(w->dead, sizeof(w->dead), "%s/dead", w->outbox) >=
		(int)sizeof(w->dead)) {
		log_warnx("spool path '%s' is too long", conf->spool);
		return -ENAMETOOLONG;
	}
	if (snprintf(w->statfile, sizeof(w->statfile), "%s/_notify.json",
		conf->status) >= (int)sizeof(w->statfile))
		w->statfile[0] = '\0';
	if (env != NULL && env[0] != '\0') {
		char *end;
		long v;

		errno = 0;
		v = strtol(env, &end, 10);
		if (errno != 0 || *end != '\0' || v < 1 || v > 300000)
			log_warnx("LADDERD_WEBHOOK_BACKOFF_MS='%s' is not "
				  "1..300000, ignoring",
			    env);
		else
			ms = v;
	}
	w->backoff = (uint64_t)ms * 1000;
	env = getenv("LADDERD_NOTIFY_TELL_PARENT");
	w->tell_parent = env != NULL && strcmp(env, "1") == 0 &&
	    getppid() != 1;
	w->max_age = (long)ladderd_ctx_num(conf->notify, "max_age", 86400);
	w->rng = ladderd_clock_mono_us() ^ ((uint64_t)getpid() << 32) ^
	    (uint64_t)time(NULL);
	if (w->rng == 0)
		w->rng = 1; /* xorshift's one fixed point */
	for (int i = 0; i < TR__COUNT; i++)
		if ((rc = outbox_transport_new(w, i, conf)) < 0)
			return rc;
	return 0;
}

/*
 * How long the loop may sleep: until the next delivery falls due, at most
 * OUTBOX_MAX_WAIT_MS (so reloads and rescans are not starved).
 */
static int
outbox_wait_ms(struct outbox *w)
{
	uint64_t next = outbox_next_due(w), now = ladderd_clock_mono_us();
	uint64_t d;

	if (next == UINT64_MAX)
		return OUTBOX_MAX_WAIT_MS;
	d = next > now ? next - now : 0;
	d = (d + 999) / 1000;
	return d < OUTBOX_MAX_WAIT_MS ? (int)d : OUTBOX_MAX_WAIT_MS;
}

/* Let each transport make progress and settle the deliveries it ended. */
static void
outbox_collect(struct outbox *w)
{
	for (int i = 0; i < TR__COUNT; i++) {
		struct ladderd_transport *tr = &w->tr[i];
		void *cookie;
		enum ladderd_delivery res;
		char reason[2048];

		if (tr->state == NULL)
			continue;
		if (tr->drive != NULL)
			tr->drive(tr->state);
		if (tr->changes != NULL &&
		    tr->changes(tr->state) != w->tr_changes[i]) {
			/* Connected or lost: _notify.json says so. */
			w->tr_changes[i] = tr->changes(tr->state);
			w->stats_dirty = true;
		}
		while (tr->next(tr->state, &cookie, &res, reason,
		    sizeof(reason))) {
			outbox_finish(w, cookie, res, reason);
			free(cookie);
		}
	}
}

/* Deliveries still in flight at a stop, for the log line. */
static unsigned
outbox_in_flight(const struct outbox *w)
{
	unsigned n = 0;

	for (int i = 0; i < TR__COUNT; i++)
		if (w->tr[i].state != NULL)
			n += w->tr[i].in_flight(w->tr[i].state);
	return n;
}

/* Wait for the nearest retry, a delivery, inotify, a signal. */
static int
outbox_wait(struct outbox *w, int ms)
{
	int fds[2 + TR__COUNT] = { w->ifd, w->sfd };
	size_t nfds = 2;
	struct ladderd_transport *waiter = NULL;

	for (int i = 0; i < TR__COUNT; i++) {
		struct ladderd_transport *tr = &w->tr[i];
		int fd;

		if (tr->state == NULL)
			continue;
		if (tr->wait != NULL && waiter == NULL)
			waiter = tr;
		else if (tr->fd != NULL && (fd = tr->fd(tr->state)) >= 0)
			fds[nfds++] = fd;
	}
	if (waiter != NULL)
		return waiter->wait(waiter->state, fds, nfds, ms);
	{
		struct pollfd pfd[2 + TR__COUNT];

		for (size_t i = 0; i < nfds; i++)
			pfd[i] = (struct pollfd){ .fd = fds[i],
				.events = POLLIN };
		if (poll(pfd, nfds, ms) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

int
ladderd_outbox_worker(const struct ladderd_conf *conf, const char *conf_file)
{
	struct outbox w = { .ifd = -1, .wd = -1, .sfd = -1 };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	struct sigaction old_pipe;
	sigset_t set, oldmask;
	bool signals = false;
	unsigned abandoned = 0;
	int rc;

	w.conf_file = conf_file;
	/*
	 * SIGTERM/SIGINT/SIGHUP arrive through a signalfd the wait watches,
	 * so none is lost between a test and the wait. SIGPIPE is ignored:
	 * with CURLOPT_NOSIGNAL libcurl does not, and a receiver or broker
	 * closing early must not kill us.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigemptyset(&ign.sa_mask);
	if (sigprocmask(SIG_BLOCK, &set, &oldmask) < 0) {
		rc = -errno;
		log_warn("cannot block signals");
		goto out;
	}
	(void)sigaction(SIGPIPE, &ign, &old_pipe);
	signals = true;
	if ((w.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		rc = -errno;
		log_warn("cannot create a signalfd");
		goto out;
	}
	if ((rc = outbox_setup(&w, conf)) < 0)
		goto out;
	if ((w.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		rc = -errno;
		log_warn("cannot create an inotify instance");
		goto out;
	}
	/* Watch first, then scan: an entry arriving between is not missed. */
	if ((rc = outbox_scan(&w)) < 0) {
		log_warnx("cannot watch or scan the outbox '%s': %s", w.outbox,
		    strerror(-rc));
		goto out;
	}
	log_info("notify worker: outbox '%s', %zu queue(s) pending", w.outbox,
	    w.ntasks);
	outbox_write_stats(&w, true);
	while (!w.stop) {
		if (w.reload)
			outbox_reload(&w);
		if (w.need_scan ||
		    (w.scan_due != 0 && w.scan_due <= ladderd_clock_mono_us())) {
			w.need_scan = false;
			if ((rc = outbox_scan(&w)) < 0)
				log_warnx("cannot scan the outbox '%s': %s, "
					  "retrying in %llu s",
				    w.outbox, strerror(-rc),
				    OUTBOX_RESCAN_US / 1000000);
		}
		outbox_run_due(&w);
		outbox_write_stats(&w, false);
		if ((rc = outbox_wait(&w, outbox_wait_ms(&w))) < 0) {
			log_warnx("cannot wait for outbox events and "
				  "deliveries");
			goto out;
		}
		outbox_read_signals(&w);
		outbox_collect(&w);
		outbox_read_events(&w);
	}
	abandoned = outbox_in_flight(&w);
	log_info("notify worker: stopping on signal %d, %zu queue(s) "
		 "pending, %u delivery(ies) abandoned",
	    w.stop, w.ntasks, abandoned);
	w.stats_dirty = true;
	outbox_write_stats(&w, true);
	rc = 0;
out:
	if (w.ifd >= 0)
		close(w.ifd);
	if (w.sfd >= 0)
		close(w.sfd);
	/*
	 * Abandoned deliveries are not failures: their entries are still in
	 * the outbox, and the next run sends them (same id).
	 */
	for (int i = 0; i < TR__COUNT; i++)
		if (w.tr[i].state != NULL)
			w.tr[i].free(w.tr[i].state);
	if (signals) {
		(void)sigprocmask(SIG_SETMASK, &oldmask, NULL);
		(void)sigaction(SIGPIPE, &old_pipe, NULL);
	}
	free(w.tasks);
	return rc;
}
