/*
 * webhook.c - the notify worker (`ladderd notify`): it owns
 * <spool>/outbox/ once an entry is there. A 2xx answer unlinks the entry;
 * anything else retries it later with exponential backoff and jitter; an
 * entry older than notify.max_age, or one that is not a valid entry, is
 * renamed into outbox/dead/ with a warning, never deleted.
 *
 * Invariants: per task only the entry with the lowest seq is ever sent, so
 * seq N+1 never reaches a receiver before seq N was delivered (or buried).
 * The directory is the truth and inotify only a hint to rescan it, so
 * entries of an earlier run, or lost by an overflowing inotify queue, are
 * sent too. Delivery is at least once: a crash between the 2xx and the
 * unlink sends the event again, with the same webhook-id.
 *
 * Fails (returns a negative errno) only while starting: the outbox cannot
 * be created, scanned or watched, a whsec_ secret is not base64, libcurl
 * cannot be set up. Later errors are logged and retried.
 *
 * XXX sends are synchronous: a receiver that times out delays the other
 * tasks' deliveries by up to notify.timeout per attempt. Backoff keeps that
 * rare; a multi-handle would remove it.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "crashpoint.h"
#include "ctx.h"
#include "fsutil.h"
#include "log.h"
#include "sign.h"
#include "webhook.h"

#if !CURL_AT_LEAST_VERSION(7, 85, 0)
#error "the notify worker needs libcurl >= 7.85 (CURLOPT_PROTOCOLS_STR)"
#endif

#define WEBHOOK_MAX_ENTRY (16 * 1024 * 1024) /* bytes of one outbox file */
#define WEBHOOK_MAX_TASKS 4096		     /* tasks tracked at once */
#define WEBHOOK_TASK_MAX 64		     /* task id length, README "Drops" */
#define WEBHOOK_MAX_BACKOFF_US (300ULL * 1000000)
#define WEBHOOK_RESCAN_US (5ULL * 1000000) /* after a failed scan */
#define WEBHOOK_INOTIFY_READS 64	   /* per wake-up; the rest wakes us */
#define WEBHOOK_MASK (IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_MOVE_SELF)

/* The head (lowest seq) of one task's pending entries. */
struct webhook_task {
	char task[WEBHOOK_TASK_MAX + 1];
	char name[NAME_MAX + 1]; /* its file name in the outbox */
	long seq;
	uint64_t due;	   /* monotonic us of the next attempt, 0 = now */
	unsigned attempts; /* failed attempts of this entry */
	bool done;	   /* sent or buried; the next scan says what follows */
};

struct webhook {
	char outbox[PATH_MAX], dead[PATH_MAX];
	uint8_t *key; /* HMAC key, NULL: no webhook-signature */
	size_t keylen;
	long timeout, max_age; /* seconds */
	uint64_t backoff;      /* first retry delay, us */
	uint64_t rng;	       /* xorshift state for the jitter */
	int ifd, wd;
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	struct webhook_task *tasks; /* sorted by task id */
	size_t ntasks;
	bool need_scan;
	uint64_t scan_due; /* retry a failed scan then, 0 = not needed */
	sigset_t stopset;  /* SIGTERM, SIGINT */
};

enum webhook_result {
	WEBHOOK_DELIVERED,
	WEBHOOK_RETRY,	  /* the receiver or the network may get better */
	WEBHOOK_REJECTED, /* the entry itself is unusable: bury it */
	WEBHOOK_STOPPED	  /* a stop signal interrupted the attempt */
};

/*
 * The one piece of file-scope mutable state, because a signal handler can
 * reach nothing else: the signal that asked us to stop, 0 until then.
 */
static volatile sig_atomic_t webhook_stop;

static void
webhook_on_signal(int sig)
{
	webhook_stop = sig;
}

static uint64_t
webhook_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * True once SIGTERM/SIGINT arrived. They are blocked outside ppoll(), so
 * during a send one is only pending: look at the pending set too.
 */
static bool
webhook_stopping(void)
{
	sigset_t pending;

	if (webhook_stop)
		return true;
	if (sigpending(&pending) < 0)
		return false;
	return sigismember(&pending, SIGTERM) == 1 ||
	    sigismember(&pending, SIGINT) == 1;
}

/* xorshift64: jitter needs no quality, only no shared state. */
static uint64_t
webhook_random(struct webhook *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static bool
webhook_is_json(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/*
 * Split "<task>.<seq>.json" (the seq zero-padded by the writer). Returns 0,
 * or -EINVAL when the name is not an outbox entry's.
 */
static int
webhook_parse_name(const char *name, char *task, size_t tasksize,
    long *ret_seq)
{
	size_t n = strlen(name), tlen;
	const char *dot, *p;
	long seq = 0;

	if (!webhook_is_json(name))
		return -EINVAL;
	n -= 5;
	if ((dot = memrchr(name, '.', n)) == NULL || dot == name)
		return -EINVAL;
	tlen = (size_t)(dot - name);
	if (tlen >= tasksize || name + n - (dot + 1) < 1 ||
	    name + n - (dot + 1) > 18)
		return -EINVAL;
	for (p = dot + 1; p < name + n; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		seq = seq * 10 + (*p - '0');
	}
	memcpy(task, name, tlen);
	task[tlen] = '\0';
	if (!ladderd_ctx_valid_name(task))
		return -EINVAL;
	*ret_seq = seq;
	return 0;
}

/* Binary search by task id: true if found; *ret_pos = index or insertion. */
static bool
webhook_lookup(const struct webhook_task *tasks, size_t n, const char *task,
    size_t *ret_pos)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(tasks[mid].task, task);

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
webhook_bury(struct webhook *w, const struct webhook_task *t, const char *name,
    const char *why)
{
	char from[PATH_MAX], to[PATH_MAX], who[WEBHOOK_TASK_MAX + 48] = "";
	int rc;

	if (t != NULL)
		(void)snprintf(who, sizeof(who), "task=%s seq=%ld: ", t->task,
		    t->seq);
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
	log_warnx("%swebhook given up, '%s' moved to '%s': %s", who, name,
	    w->dead, why);
	return 0;
}

/* Create the outbox (and dead/) and watch it, if not done yet. */
static int
webhook_prepare(struct webhook *w)
{
	int rc;

	if ((rc = ladderd_fsutil_mkdir_p(w->dead, 0755)) < 0)
		return rc;
	if (w->wd < 0) {
		/* IN_ONLYDIR: a symlink swapped in for the outbox is refused */
		w->wd = inotify_add_watch(w->ifd, w->outbox,
		    WEBHOOK_MASK | IN_ONLYDIR);
		if (w->wd < 0)
			return -errno;
	}
	return 0;
}

/*
 * Rebuild the task list from the directory: per task, the entry with the
 * lowest seq. A task whose head is unchanged keeps its backoff. Names
 * ending in ".json" that are not entry names are buried. Returns 0 or a
 * negative errno (the old list is kept and a rescan is scheduled).
 */
static int
webhook_scan(struct webhook *w)
{
	struct webhook_task *fresh = NULL;
	size_t n = 0, cap = 0;
	DIR *d = NULL;
	struct dirent *de;
	bool full = false;
	int rc;

	w->scan_due = 0;
	if ((rc = webhook_prepare(w)) < 0)
		goto out;
	if ((d = opendir(w->outbox)) == NULL) {
		rc = -errno;
		goto out;
	}
	/* Bounded by the directory's size; errno = 0 tells end from error. */
	while ((errno = 0, de = readdir(d)) != NULL) {
		char task[WEBHOOK_TASK_MAX + 1];
		long seq;
		size_t pos;

		if (!webhook_is_json(de->d_name))
			continue; /* temp files, dead/, anything else */
		if (webhook_parse_name(de->d_name, task, sizeof(task), &seq) <
		    0) {
			(void)webhook_bury(w, NULL, de->d_name,
			    "not an outbox entry name");
			continue;
		}
		if (webhook_lookup(fresh, n, task, &pos)) {
			if (seq < fresh[pos].seq) {
				fresh[pos].seq = seq;
				(void)snprintf(fresh[pos].name,
				    sizeof(fresh[pos].name), "%s", de->d_name);
			}
			continue;
		}
		if (n == WEBHOOK_MAX_TASKS) {
			/* Skipping a whole task keeps the order intact. */
			full = true;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct webhook_task *nt;

			if (ncap > WEBHOOK_MAX_TASKS)
				ncap = WEBHOOK_MAX_TASKS;
			if ((nt = realloc(fresh, ncap * sizeof(*nt))) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			fresh = nt;
			cap = ncap;
		}
		memmove(&fresh[pos + 1], &fresh[pos],
		    (n - pos) * sizeof(*fresh));
		memset(&fresh[pos], 0, sizeof(fresh[pos]));
		(void)snprintf(fresh[pos].task, sizeof(fresh[pos].task), "%s",
		    task);
		(void)snprintf(fresh[pos].name, sizeof(fresh[pos].name), "%s",
		    de->d_name);
		fresh[pos].seq = seq;
		n++;
	}
	if (errno != 0) {
		rc = -errno;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t pos;

		if (webhook_lookup(w->tasks, w->ntasks, fresh[i].task, &pos) &&
		    !w->tasks[pos].done && w->tasks[pos].seq == fresh[i].seq) {
			fresh[i].due = w->tasks[pos].due;
			fresh[i].attempts = w->tasks[pos].attempts;
		}
	}
	free(w->tasks);
	w->tasks = fresh;
	w->ntasks = n;
	fresh = NULL;
	/*
	 * XXX the tasks left out wait until a tracked task drains (which
	 * rescans); if all tracked tasks' receivers are down, that is until
	 * their entries reach max_age.
	 */
	if (full)
		log_warnx("more than %d tasks have webhooks pending; the "
			  "others wait for a later scan",
		    WEBHOOK_MAX_TASKS);
	rc = 0;
out:
	if (d != NULL)
		closedir(d);
	free(fresh);
	if (rc < 0)
		w->scan_due = webhook_now() + WEBHOOK_RESCAN_US;
	return rc;
}

/*
 * The head of `t` is gone (sent or buried): make seq+1 the head when its
 * file is there (the common case, no rescan needed), else let a rescan
 * find what follows, if anything.
 */
static void
webhook_advance(struct webhook *w, struct webhook_task *t)
{
	char name[NAME_MAX + 1], path[PATH_MAX];
	struct stat st;

	t->done = true;
	if (snprintf(name, sizeof(name), "%s.%010ld.json", t->task,
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
webhook_failed(struct webhook *w, struct webhook_task *t, const char *why)
{
	unsigned shift = t->attempts < 20 ? t->attempts : 20;
	uint64_t delay = w->backoff << shift;

	t->attempts++;
	if (delay > WEBHOOK_MAX_BACKOFF_US)
		delay = WEBHOOK_MAX_BACKOFF_US;
	/* +-20%: entries that failed together must not retry in lockstep. */
	delay = delay * (80 + webhook_random(w) % 41) / 100;
	t->due = webhook_now() + delay;
	log_warnx("task=%s seq=%ld: webhook delivery failed: %s; attempt %u, "
		  "next in %.1f s",
	    t->task, t->seq, why, t->attempts, (double)delay / 1e6);
}

/* Bury the head of `t` and go on with the task, or retry burying later. */
static void
webhook_give_up(struct webhook *w, struct webhook_task *t, const char *why)
{
	if (webhook_bury(w, t, t->name, why) == 0)
		webhook_advance(w, t);
	else
		webhook_failed(w, t, "cannot move it to dead/");
}

static size_t
webhook_discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb; /* the answer's body means nothing to us */
}

/* Abort a send in progress on SIGTERM/SIGINT (checked about once a s). */
static int
webhook_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	(void)arg;
	return webhook_stopping() ? 1 : 0;
}

/*
 * POST one event. `reason` receives what happened ("HTTP 503", curl's
 * message); the URL is not in it, as it may hold a token.
 */
static enum webhook_result
webhook_post(struct webhook *w, const char *url, const char *id,
    const char *body, char *reason, size_t rsize)
{
	struct curl_slist *hdrs = NULL, *h;
	char h_id[512], h_ts[64], h_sig[128], ts[32];
	const char *fixed[] = { "Content-Type: application/json",
		"Expect:", /* no 100-continue round trip */
		h_id, h_ts, NULL };
	enum webhook_result res = WEBHOOK_RETRY;
	size_t bodylen = strlen(body);
	long code = 0;
	CURLcode cc;

	(void)snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	if (snprintf(h_id, sizeof(h_id), "webhook-id: %s", id) >=
	    (int)sizeof(h_id)) {
		(void)snprintf(reason, rsize, "webhook id is too long");
		res = WEBHOOK_REJECTED;
		goto out;
	}
	(void)snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %s", ts);
	for (size_t i = 0; fixed[i] != NULL; i++) {
		if ((h = curl_slist_append(hdrs, fixed[i])) == NULL)
			goto nomem;
		hdrs = h;
	}
	if (w->key != NULL) {
		int n = snprintf(h_sig, sizeof(h_sig),
		    "webhook-signature: v1,");

		if (ladderd_sign_webhook(w->key, w->keylen, id, ts, body,
			bodylen, h_sig + n, sizeof(h_sig) - (size_t)n) < 0 ||
		    (h = curl_slist_append(hdrs, h_sig)) == NULL)
			goto nomem;
		hdrs = h;
	}
	curl_easy_reset(w->curl); /* keeps the connection cache */
	w->errbuf[0] = '\0';
	/* Each of these must hold, or the request is not sent at all. */
	if (curl_easy_setopt(w->curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_PROTOCOLS_STR, "http,https") !=
		CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_FOLLOWLOCATION, 0L) !=
		CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT, w->timeout) !=
		CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT, w->timeout) !=
		CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		(curl_off_t)bodylen) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION,
		webhook_discard) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_XFERINFOFUNCTION,
		webhook_progress) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_XFERINFODATA, w) != CURLE_OK ||
	    curl_easy_setopt(w->curl, CURLOPT_ERRORBUFFER, w->errbuf) !=
		CURLE_OK) {
		(void)snprintf(reason, rsize, "cannot set up libcurl");
		goto out;
	}
	(void)curl_easy_setopt(w->curl, CURLOPT_USERAGENT,
	    "ladderd/" PACKAGE_VERSION);
	cc = curl_easy_perform(w->curl);
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		res = WEBHOOK_STOPPED;
		goto out;
	}
	if (cc != CURLE_OK) {
		(void)snprintf(reason, rsize, "%s",
		    w->errbuf[0] ? w->errbuf : curl_easy_strerror(cc));
		/* No retry turns a refused URL into a good one. */
		if (cc == CURLE_UNSUPPORTED_PROTOCOL ||
		    cc == CURLE_URL_MALFORMAT)
			res = WEBHOOK_REJECTED;
		goto out;
	}
	(void)curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
	(void)snprintf(reason, rsize, "HTTP %ld", code);
	res = code >= 200 && code <= 299 ? WEBHOOK_DELIVERED : WEBHOOK_RETRY;
	goto out;
nomem:
	(void)snprintf(reason, rsize, "out of memory");
out:
	curl_slist_free_all(hdrs);
	return res;
}

/* One delivery attempt of the head of `t`, and what follows from it. */
static void
webhook_attempt(struct webhook *w, struct webhook_task *t)
{
	char path[PATH_MAX], reason[CURL_ERROR_SIZE + 512];
	const char *url, *id, *body;
	cJSON *entry = NULL;
	char *text = NULL;
	double created;
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", w->outbox, t->name) >=
	    (int)sizeof(path)) {
		webhook_failed(w, t, "outbox path too long");
		goto out;
	}
	if ((rc = ladderd_fsutil_read(path, WEBHOOK_MAX_ENTRY, &text, NULL)) <
	    0) {
		if (rc == -ENOENT) {
			/* Taken away behind our back: rescan. */
			t->done = true;
			w->need_scan = true;
		} else if (rc == -EFBIG) {
			webhook_give_up(w, t, "larger than 16 MiB");
		} else {
			(void)snprintf(reason, sizeof(reason),
			    "cannot read '%s': %s", t->name, strerror(-rc));
			webhook_failed(w, t, reason);
		}
		goto out;
	}
	entry = cJSON_Parse(text);
	url = ladderd_ctx_str(entry, "url", NULL);
	id = ladderd_ctx_str(entry, "id", NULL);
	body = ladderd_ctx_str(entry, "body", NULL);
	created = ladderd_ctx_num(entry, "created", -1);
	if (url == NULL || id == NULL || body == NULL || created < 0) {
		webhook_give_up(w, t,
		    "not a valid entry (url, id, body, created)");
		goto out;
	}
	if ((double)time(NULL) - created > (double)w->max_age) {
		(void)snprintf(reason, sizeof(reason),
		    "older than notify.max_age (%ld s), %u failed attempts",
		    w->max_age, t->attempts);
		webhook_give_up(w, t, reason);
		goto out;
	}
	switch (webhook_post(w, url, id, body, reason, sizeof(reason))) {
	case WEBHOOK_DELIVERED:
		LADDERD_CRASH_POINT("webhook.delivered", NULL);
		if (unlink(path) < 0 && errno != ENOENT) {
			/* Backoff, or we would resend it in a tight loop. */
			(void)snprintf(reason, sizeof(reason),
			    "delivered, but cannot remove '%s': %s", t->name,
			    strerror(errno));
			webhook_failed(w, t, reason);
			break;
		}
		if (t->attempts > 0)
			log_info("task=%s seq=%ld: webhook delivered (%s) "
				 "after %u failed attempts",
			    t->task, t->seq, reason, t->attempts);
		else
			log_debug("task=%s seq=%ld: webhook delivered (%s)",
			    t->task, t->seq, reason);
		webhook_advance(w, t);
		break;
	case WEBHOOK_RETRY:
		webhook_failed(w, t, reason);
		break;
	case WEBHOOK_REJECTED:
		webhook_give_up(w, t, reason);
		break;
	case WEBHOOK_STOPPED:
		break; /* not a failure: the next run sends it */
	}
out:
	cJSON_Delete(entry);
	free(text);
}

/* Drain the inotify queue (bounded); events only decide to rescan. */
static void
webhook_read_events(struct webhook *w)
{
	char buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));

	for (int r = 0; r < WEBHOOK_INOTIFY_READS; r++) {
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
			} else if (ev->len > 0 && webhook_is_json(ev->name)) {
				w->need_scan = true;
			}
		}
	}
}

/* One attempt for every task that is due: round robin, bounded. */
static void
webhook_run_due(struct webhook *w)
{
	uint64_t now = webhook_now();

	for (size_t i = 0; i < w->ntasks && !webhook_stopping(); i++) {
		struct webhook_task *t = &w->tasks[i];

		if (!t->done && t->due <= now)
			webhook_attempt(w, t);
	}
}

/* Monotonic us of the earliest pending work, UINT64_MAX if none. */
static uint64_t
webhook_next_due(const struct webhook *w)
{
	uint64_t next = w->scan_due ? w->scan_due : UINT64_MAX;

	if (w->need_scan)
		return 0;
	for (size_t i = 0; i < w->ntasks; i++)
		if (!w->tasks[i].done && w->tasks[i].due < next)
			next = w->tasks[i].due;
	return next;
}

/* Settings, HMAC key, libcurl handle. Logs why it fails. */
static int
webhook_setup(struct webhook *w, const struct ladderd_conf *conf)
{
	const char *secret = ladderd_ctx_str(conf->notify, "secret", "");
	const char *env = getenv("LADDERD_WEBHOOK_BACKOFF_MS");
	long ms = 1000;

	if (snprintf(w->outbox, sizeof(w->outbox), "%s/outbox", conf->spool) >=
		(int)sizeof(w->outbox) ||
	    snprintf(w->dead, sizeof(w->dead), "%s/dead", w->outbox) >=
		(int)sizeof(w->dead)) {
		log_warnx("spool path '%s' is too long", conf->spool);
		return -ENAMETOOLONG;
	}
	w->timeout = (long)ladderd_ctx_num(conf->notify, "timeout", 10);
	w->max_age = (long)ladderd_ctx_num(conf->notify, "max_age", 86400);
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
	w->rng = webhook_now() ^ ((uint64_t)getpid() << 32) ^
	    (uint64_t)time(NULL);
	if (w->rng == 0)
		w->rng = 1; /* xorshift's one fixed point */
	if (secret[0] != '\0') {
		int err = ladderd_sign_key(secret, &w->key, &w->keylen);

		if (err == -EINVAL) {
			log_warnx("notify.secret is empty, too long, or starts "
				  "with 'whsec_' but the rest is not base64");
			return err;
		}
		if (err < 0)
			return err;
	}
	if ((w->curl = curl_easy_init()) == NULL) {
		log_warnx("cannot create a libcurl handle");
		return -ENOMEM;
	}
	return 0;
}

int
ladderd_webhook_worker(const struct ladderd_conf *conf)
{
	struct webhook w = { .ifd = -1, .wd = -1 };
	struct sigaction sa = { .sa_handler = webhook_on_signal };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	struct sigaction old_term, old_int, old_pipe;
	sigset_t oldmask, waitmask;
	bool curl_inited = false, signals = false;
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("cannot initialise libcurl");
		rc = -ENOMEM;
		goto out;
	}
	curl_inited = true;
	if ((rc = webhook_setup(&w, conf)) < 0)
		goto out;
	/*
	 * SIGTERM/SIGINT stay blocked except inside ppoll(), so one that
	 * arrives between the flag test and the wait still wakes the wait.
	 * SIGPIPE is ignored: with CURLOPT_NOSIGNAL libcurl does not, and a
	 * receiver closing early must not kill us.
	 */
	sigemptyset(&w.stopset);
	sigaddset(&w.stopset, SIGTERM);
	sigaddset(&w.stopset, SIGINT);
	sigemptyset(&sa.sa_mask);
	sigemptyset(&ign.sa_mask);
	webhook_stop = 0;
	if (sigprocmask(SIG_BLOCK, &w.stopset, &oldmask) < 0) {
		rc = -errno;
		log_warn("cannot block signals");
		goto out;
	}
	(void)sigaction(SIGTERM, &sa, &old_term);
	(void)sigaction(SIGINT, &sa, &old_int);
	(void)sigaction(SIGPIPE, &ign, &old_pipe);
	signals = true;
	waitmask = oldmask;
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	if ((w.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		rc = -errno;
		log_warn("cannot create an inotify instance");
		goto out;
	}
	/* Watch first, then scan: an entry arriving between is not missed. */
	if ((rc = webhook_scan(&w)) < 0) {
		log_warnx("cannot watch or scan the outbox '%s': %s", w.outbox,
		    strerror(-rc));
		goto out;
	}
	log_info("notify worker: outbox '%s', %zu task(s) pending", w.outbox,
	    w.ntasks);
	while (!webhook_stop) {
		struct pollfd pfd = { .fd = w.ifd, .events = POLLIN };
		struct timespec ts, *tsp = NULL;
		uint64_t next, now;

		if (w.need_scan ||
		    (w.scan_due != 0 && w.scan_due <= webhook_now())) {
			w.need_scan = false;
			if ((rc = webhook_scan(&w)) < 0)
				log_warnx("cannot scan the outbox '%s': %s, "
					  "retrying in %llu s",
				    w.outbox, strerror(-rc),
				    WEBHOOK_RESCAN_US / 1000000);
		}
		/* Wait for the nearest retry; nothing pending: for inotify. */
		next = webhook_next_due(&w);
		now = webhook_now();
		if (next != UINT64_MAX) {
			uint64_t d = next > now ? next - now : 0;

			ts.tv_sec = (time_t)(d / 1000000);
			ts.tv_nsec = (long)(d % 1000000) * 1000;
			tsp = &ts;
		}
		rc = ppoll(&pfd, 1, tsp, &waitmask);
		if (rc < 0 && errno != EINTR) {
			rc = -errno;
			log_warn("cannot wait for outbox events");
			goto out;
		}
		if (rc > 0)
			webhook_read_events(&w);
		if (!webhook_stop)
			webhook_run_due(&w);
	}
	log_info("notify worker: stopping on signal %d, %zu task(s) pending",
	    (int)webhook_stop, w.ntasks);
	rc = 0;
out:
	if (w.ifd >= 0)
		close(w.ifd);
	if (signals) {
		/*
		 * Unblock while our handler is still there: a second SIGTERM
		 * pending now must not kill us with the default action.
		 */
		(void)sigprocmask(SIG_SETMASK, &oldmask, NULL);
		(void)sigaction(SIGTERM, &old_term, NULL);
		(void)sigaction(SIGINT, &old_int, NULL);
		(void)sigaction(SIGPIPE, &old_pipe, NULL);
	}
	if (w.curl != NULL)
		curl_easy_cleanup(w.curl);
	if (curl_inited)
		curl_global_cleanup();
	if (w.key != NULL) {
		explicit_bzero(w.key, w.keylen);
		free(w.key);
	}
	free(w.tasks);
	return rc;
}
