/*
 * webhook.c - the notify worker (`ladderd notify`): it owns
 * <spool>/outbox/ once an entry is there. A 2xx answer unlinks the entry;
 * anything else retries it later with exponential backoff and jitter; an
 * entry older than notify.max_age, or one that is not a valid entry, is
 * renamed into outbox/dead/ with a warning, never deleted.
 *
 * Two destinations per task, each its own queue: the operator's webhook
 * (entries "<task>.<seq>.json", sent to notify.webhook as configured now,
 * signed with notify.secret) and, when notify.allow_manifest_webhook
 * allows it, the manifest's ("<task>@manifest.<seq>.json", sent only to a
 * host listed in notify.manifest_webhook_hosts, only to addresses the
 * address policy (netpolicy.h, notify.allow_networks) permits, signed only
 * with notify.manifest_webhook_secret, never with the operator's secret).
 *
 * Invariants: per queue only the entry with the lowest seq is ever sent
 * (and at most one attempt of it is in flight), so seq N+1 never reaches a
 * receiver before seq N was delivered (or buried). Queues are sent
 * concurrently (webhook_send.h: a limit per destination, a backoff per
 * destination), so a slow receiver delays only its own queues. The
 * directory is the truth and inotify only a hint to rescan it. Delivery is
 * at least once: a crash between the 2xx and the unlink sends the event
 * again, with the same webhook-id.
 *
 * SIGHUP (the supervisor sends it after a reload) re-reads the config
 * file: a rotated secret, a new URL or new limits apply to the next
 * attempt, and entries waiting in backoff are tried again at once.
 *
 * Fails (returns a negative errno) only while starting: the outbox cannot
 * be created, scanned or watched, a whsec_ secret is not base64, libcurl
 * cannot be set up. Later errors are logged and retried.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "crashpoint.h"
#include "ctx.h"
#include "fsutil.h"
#include "log.h"
#include "netpolicy.h"
#include "sign.h"
#include "webhook.h"
#include "webhook_send.h"

#define WEBHOOK_MAX_ENTRY (16 * 1024 * 1024) /* bytes of one outbox file */
#define WEBHOOK_MAX_TASKS 4096		     /* queues tracked at once */
#define WEBHOOK_TASK_MAX 64		     /* task id length, README "Drops" */
#define WEBHOOK_MANIFEST "@manifest"	     /* queue suffix; '@' is no id's */
#define WEBHOOK_QUEUE_MAX (WEBHOOK_TASK_MAX + sizeof(WEBHOOK_MANIFEST))
#define WEBHOOK_MAX_BACKOFF_US (300ULL * 1000000)
#define WEBHOOK_RESCAN_US (5ULL * 1000000) /* after a failed scan */
#define WEBHOOK_INOTIFY_READS 64	   /* per wake-up; the rest wakes us */
#define WEBHOOK_MAX_IN_FLIGHT 64	   /* transfers at once, in total */
#define WEBHOOK_MAX_WAIT_MS 3600000	   /* idle: inotify or a signal wakes */
#define WEBHOOK_MASK (IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_MOVE_SELF)

/* The settings a reload replaces. */
struct webhook_settings {
	char *url;		/* notify.webhook, NULL: the entry's own */
	uint8_t *key;		/* notify.secret's HMAC key, NULL: unsigned */
	size_t keylen;
	uint8_t *mkey;		/* notify.manifest_webhook_secret's */
	size_t mkeylen;
	bool allow_manifest;	/* notify.allow_manifest_webhook */
	cJSON *hosts;		/* notify.manifest_webhook_hosts (owned) */
	struct ladderd_netpolicy policy; /* notify.allow_networks */
	long timeout, max_age;	/* seconds */
	unsigned per_host;	/* notify.max_per_host */
};

/* The head (lowest seq) of one queue: a task's operator or manifest events. */
struct webhook_task {
	char queue[WEBHOOK_QUEUE_MAX]; /* task, plus WEBHOOK_MANIFEST */
	char task[WEBHOOK_TASK_MAX + 1];
	bool manifest;
	char name[NAME_MAX + 1]; /* its file name in the outbox */
	long seq;
	uint64_t due;	   /* monotonic us of the next attempt, 0 = now */
	unsigned attempts; /* failed attempts of this entry */
	bool done;	   /* sent or buried; the next scan says what follows */
	bool in_flight;
	char dest[LADDERD_SEND_DEST_MAX]; /* where it goes, "" = not known */
};

/* What a transfer in flight needs to find its queue again. */
struct webhook_cookie {
	char queue[WEBHOOK_QUEUE_MAX];
	long seq;
};

struct webhook {
	char outbox[PATH_MAX], dead[PATH_MAX];
	const char *conf_file; /* re-read on SIGHUP; NULL: the CLI default */
	struct webhook_settings *set;
	uint64_t backoff; /* first retry delay, us */
	uint64_t rng;	  /* xorshift state for the jitter */
	int ifd, wd, sfd;
	struct ladderd_sender *sender;
	struct webhook_task *tasks; /* sorted by queue */
	size_t ntasks;
	bool need_scan;
	uint64_t scan_due; /* retry a failed scan then, 0 = not needed */
	int stop;	   /* the signal that asked us to stop */
	bool reload;
};

static uint64_t
webhook_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
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
 * Split "<task>[@manifest].<seq>.json" (the seq zero-padded by the
 * writer). Returns 0, or -EINVAL when the name is not an outbox entry's.
 */
static int
webhook_parse_name(const char *name, struct webhook_task *t)
{
	size_t n = strlen(name), qlen, slen = strlen(WEBHOOK_MANIFEST);
	const char *dot, *p;
	long seq = 0;

	if (!webhook_is_json(name))
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
	t->manifest = qlen > slen &&
	    memcmp(name + qlen - slen, WEBHOOK_MANIFEST, slen) == 0;
	if (t->manifest)
		qlen -= slen;
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
webhook_lookup(const struct webhook_task *tasks, size_t n, const char *queue,
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
webhook_bury(struct webhook *w, const struct webhook_task *t, const char *name,
    const char *why)
{
	char from[PATH_MAX], to[PATH_MAX], who[WEBHOOK_TASK_MAX + 64] = "";
	int rc;

	if (t != NULL)
		(void)snprintf(who, sizeof(who), "task=%s seq=%ld%s: ", t->task,
		    t->seq, t->manifest ? " (manifest webhook)" : "");
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
 * Rebuild the queue list from the directory: per queue, the entry with the
 * lowest seq. A queue whose head is unchanged keeps its backoff and its
 * transfer in flight. Names ending in ".json" that are not entry names are
 * buried. Returns 0 or a negative errno (the old list is kept and a rescan
 * is scheduled).
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
		struct webhook_task t;
		size_t pos;

		if (!webhook_is_json(de->d_name))
			continue; /* temp files, dead/, anything else */
		memset(&t, 0, sizeof(t));
		if (webhook_parse_name(de->d_name, &t) < 0) {
			(void)webhook_bury(w, NULL, de->d_name,
			    "not an outbox entry name");
			continue;
		}
		if (webhook_lookup(fresh, n, t.queue, &pos)) {
			if (t.seq < fresh[pos].seq)
				fresh[pos] = t;
			continue;
		}
		if (n == WEBHOOK_MAX_TASKS) {
			/* Skipping a whole queue keeps the order intact. */
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
		fresh[pos] = t;
		n++;
	}
	if (errno != 0) {
		rc = -errno;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t pos;
		const struct webhook_task *o;

		if (!webhook_lookup(w->tasks, w->ntasks, fresh[i].queue, &pos))
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
	/*
	 * XXX the queues left out wait until a tracked one drains (which
	 * rescans); if all tracked receivers are down, that is until their
	 * entries reach max_age.
	 */
	if (full)
		log_warnx("more than %d queues have webhooks pending; the "
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
webhook_failed(struct webhook *w, struct webhook_task *t, const char *why)
{
	unsigned shift = t->attempts < 20 ? t->attempts : 20;
	uint64_t delay = w->backoff << shift;

	t->attempts++;
	t->in_flight = false;
	if (delay > WEBHOOK_MAX_BACKOFF_US)
		delay = WEBHOOK_MAX_BACKOFF_US;
	/* +-20%: entries that failed together must not retry in lockstep. */
	delay = delay * (80 + webhook_random(w) % 41) / 100;
	t->due = webhook_now() + delay;
	log_warnx("task=%s seq=%ld: %swebhook delivery failed: %s; attempt "
		  "%u, next in %.1f s",
	    t->task, t->seq, t->manifest ? "manifest " : "", why, t->attempts,
	    (double)delay / 1e6);
}

/* Bury the head of `t` and go on with the queue, or retry burying later. */
static void
webhook_give_up(struct webhook *w, struct webhook_task *t, const char *why)
{
	t->in_flight = false;
	if (webhook_bury(w, t, t->name, why) == 0)
		webhook_advance(w, t);
	else
		webhook_failed(w, t, "cannot move it to dead/");
}

static void
webhook_settings_free(struct webhook_settings *set)
{
	if (set == NULL)
		return;
	free(set->url);
	if (set->key != NULL)
		explicit_bzero(set->key, set->keylen);
	free(set->key);
	if (set->mkey != NULL)
		explicit_bzero(set->mkey, set->mkeylen);
	free(set->mkey);
	cJSON_Delete(set->hosts);
	free(set);
}

/* An HMAC key from `secret` ("" = none). Logs why it fails. */
static int
webhook_key(const char *what, const char *secret, uint8_t **key,
    size_t *keylen)
{
	int rc;

	if (secret[0] == '\0')
		return 0;
	if ((rc = ladderd_sign_key(secret, key, keylen)) == -EINVAL)
		log_warnx("notify.%s is too long, or starts with 'whsec_' but "
			  "the rest is not base64",
		    what);
	return rc;
}

/* The notify settings of `conf`; NULL (logged) when unusable. */
static struct webhook_settings *
webhook_settings_new(const struct ladderd_conf *conf)
{
	struct webhook_settings *set = calloc(1, sizeof(*set));
	const cJSON *n = conf->notify, *it;
	const char *url = ladderd_ctx_str(n, "webhook", "");

	if (set == NULL)
		return NULL;
	if ((url[0] != '\0' && (set->url = strdup(url)) == NULL) ||
	    webhook_key("secret", ladderd_ctx_str(n, "secret", ""), &set->key,
		&set->keylen) < 0 ||
	    webhook_key("manifest_webhook_secret",
		ladderd_ctx_str(n, "manifest_webhook_secret", ""), &set->mkey,
		&set->mkeylen) < 0)
		goto fail;
	set->allow_manifest = ladderd_ctx_bool(n, "allow_manifest_webhook", 0);
	it = ladderd_ctx_get(n, "manifest_webhook_hosts");
	if ((set->hosts = it ? cJSON_Duplicate(it, 1) :
			       cJSON_CreateArray()) == NULL)
		goto fail;
	/* conf.c validated every CIDR: a failure here is not possible. */
	cJSON_ArrayForEach(it, ladderd_ctx_get(n, "allow_networks"))
		if (cJSON_IsString(it))
			(void)ladderd_netpolicy_allow(&set->policy,
			    it->valuestring);
	set->timeout = (long)ladderd_ctx_num(n, "timeout", 10);
	set->max_age = (long)ladderd_ctx_num(n, "max_age", 86400);
	set->per_host = (unsigned)ladderd_ctx_num(n, "max_per_host", 2);
	return set;
fail:
	webhook_settings_free(set);
	return NULL;
}

/* Whether `host` is in notify.manifest_webhook_hosts. */
static bool
webhook_host_listed(const struct webhook_settings *set, const char *host)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, set->hosts)
		if (cJSON_IsString(it) &&
		    ladderd_netpolicy_host_match(it->valuestring, host))
			return true;
	return false;
}

/*
 * Start one delivery attempt of the head of `t`, unless its destination
 * has no room or is backing off (then t->due says when to look again, or
 * a finishing transfer will).
 */
static void
webhook_start(struct webhook *w, struct webhook_task *t, uint64_t now)
{
	const struct webhook_settings *set = w->set;
	char path[PATH_MAX], reason[CURL_ERROR_SIZE + 512], host[256];
	struct webhook_cookie *cookie = NULL;
	const char *url, *id, *body;
	cJSON *entry = NULL;
	char *text = NULL;
	uint64_t due;
	double created;
	int rc;

	if (t->dest[0] != '\0' &&
	    !ladderd_sender_may_start(w->sender, t->dest, now, &due))
		goto out;
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
	if ((double)time(NULL) - created > (double)set->max_age) {
		(void)snprintf(reason, sizeof(reason),
		    "older than notify.max_age (%ld s), %u failed attempts",
		    set->max_age, t->attempts);
		webhook_give_up(w, t, reason);
		goto out;
	}
	/*
	 * The operator's queue goes where the config says now (a reload
	 * may have changed it); the entry's URL only when none is set.
	 */
	if (!t->manifest && set->url != NULL)
		url = set->url;
	if (ladderd_sender_dest(url, t->dest, sizeof(t->dest), host,
		sizeof(host)) < 0) {
		t->dest[0] = '\0';
		webhook_give_up(w, t, "not an http(s) URL");
		goto out;
	}
	if (t->manifest && !set->allow_manifest) {
		webhook_give_up(w, t, "manifest webhooks are not allowed "
				      "(notify.allow_manifest_webhook)");
		goto out;
	}
	/* curl's parse of the host, the one it will connect to. */
	if (t->manifest && !webhook_host_listed(set, host)) {
		(void)snprintf(reason, sizeof(reason), "host '%s' is not in "
		    "notify.manifest_webhook_hosts", host);
		webhook_give_up(w, t, reason);
		goto out;
	}
	if (!ladderd_sender_may_start(w->sender, t->dest, now, &due))
		goto out;
	if ((cookie = calloc(1, sizeof(*cookie))) == NULL) {
		webhook_failed(w, t, "out of memory");
		goto out;
	}
	memcpy(cookie->queue, t->queue, sizeof(cookie->queue));
	cookie->seq = t->seq;
	{
		struct ladderd_send_req req = {
			.url = url,
			.id = id,
			.body = body,
			.bodylen = strlen(body),
			/* Never the operator's secret for a drop's URL. */
			.key = t->manifest ? set->mkey : set->key,
			.keylen = t->manifest ? set->mkeylen : set->keylen,
			.timeout = set->timeout,
			.policy = t->manifest ? &set->policy : NULL,
		};

		rc = ladderd_sender_start(w->sender, &req, cookie, reason,
		    sizeof(reason));
	}
	if (rc == -EAGAIN)
		goto out;
	if (rc < 0) {
		webhook_failed(w, t, reason);
		goto out;
	}
	cookie = NULL; /* the sender hands it back with the result */
	t->in_flight = true;
out:
	free(cookie);
	cJSON_Delete(entry);
	free(text);
}

/* A transfer ended: what follows for its queue. */
static void
webhook_finish(struct webhook *w, struct webhook_cookie *c,
    enum ladderd_send_result res, const char *reason)
{
	struct webhook_task *t;
	char path[PATH_MAX], why[CURL_ERROR_SIZE + 512];
	size_t pos;

	if (!webhook_lookup(w->tasks, w->ntasks, c->queue, &pos) ||
	    w->tasks[pos].seq != c->seq || !w->tasks[pos].in_flight)
		return; /* the entry went away meanwhile; a scan sorts it out */
	t = &w->tasks[pos];
	t->in_flight = false;
	switch (res) {
	case LADDERD_SEND_DELIVERED:
		LADDERD_CRASH_POINT("webhook.delivered", NULL);
		if (snprintf(path, sizeof(path), "%s/%s", w->outbox,
			t->name) < (int)sizeof(path) &&
		    unlink(path) < 0 && errno != ENOENT) {
			/* Backoff, or we would resend it in a tight loop. */
			(void)snprintf(why, sizeof(why),
			    "delivered, but cannot remove '%s': %s", t->name,
			    strerror(errno));
			webhook_failed(w, t, why);
			break;
		}
		if (t->attempts > 0)
			log_info("task=%s seq=%ld: %swebhook delivered (%s) "
				 "after %u failed attempts",
			    t->task, t->seq, t->manifest ? "manifest " : "",
			    reason, t->attempts);
		else
			log_debug("task=%s seq=%ld: %swebhook delivered (%s)",
			    t->task, t->seq, t->manifest ? "manifest " : "",
			    reason);
		webhook_advance(w, t);
		break;
	case LADDERD_SEND_RETRY:
		webhook_failed(w, t, reason);
		break;
	case LADDERD_SEND_REJECTED:
		webhook_give_up(w, t, reason);
		break;
	}
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

/* Start an attempt for every queue that is due: bounded by the queues. */
static void
webhook_run_due(struct webhook *w)
{
	uint64_t now = webhook_now();

	for (size_t i = 0; i < w->ntasks && !w->stop; i++) {
		struct webhook_task *t = &w->tasks[i];

		if (!t->done && !t->in_flight && t->due <= now)
			webhook_start(w, t, now);
	}
}

/* Monotonic us of the earliest pending work, UINT64_MAX if none. */
static uint64_t
webhook_next_due(const struct webhook *w)
{
	uint64_t next = w->scan_due ? w->scan_due : UINT64_MAX;
	uint64_t now = webhook_now();

	if (w->need_scan || w->reload)
		return 0;
	for (size_t i = 0; i < w->ntasks; i++) {
		const struct webhook_task *t = &w->tasks[i];
		uint64_t at = t->due, dd;

		if (t->done || t->in_flight)
			continue;
		if (t->dest[0] != '\0' &&
		    !ladderd_sender_may_start(w->sender, t->dest, now, &dd)) {
			if (dd == UINT64_MAX)
				continue; /* a finishing transfer wakes us */
			if (dd > at)
				at = dd;
		}
		if (at < next)
			next = at;
	}
	return next;
}

/*
 * SIGHUP: the config file again. New settings apply to the next attempt;
 * queues and destinations waiting in backoff are tried at once (the
 * change may be what they waited for). A bad file keeps the old settings.
 */
static void
webhook_reload(struct webhook *w)
{
	struct ladderd_conf *c = NULL;
	struct webhook_settings *set;
	char err[2048];

	w->reload = false;
	if (ladderd_conf_load_cli(w->conf_file, &c, err, sizeof(err)) < 0) {
		log_warnx("notify worker: config not reloaded, keeping the "
			  "running one: %s",
		    err);
		return;
	}
	set = webhook_settings_new(c);
	ladderd_conf_free(c);
	if (set == NULL) {
		log_warnx("notify worker: config not reloaded, keeping the "
			  "running one");
		return;
	}
	webhook_settings_free(w->set);
	w->set = set;
	ladderd_sender_set_per_dest(w->sender, set->per_host);
	ladderd_sender_reset_backoff(w->sender);
	for (size_t i = 0; i < w->ntasks; i++) {
		if (!w->tasks[i].in_flight)
			w->tasks[i].dest[0] = '\0'; /* the URL may change */
		w->tasks[i].due = 0;
	}
	log_info("notify worker: config reloaded");
}

/* Drain the signalfd: a stop, or a reload. */
static void
webhook_read_signals(struct webhook *w)
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

/* Settings, backoff, the sender. Logs why it fails. */
static int
webhook_setup(struct webhook *w, const struct ladderd_conf *conf)
{
	const char *env = getenv("LADDERD_WEBHOOK_BACKOFF_MS");
	long ms = 1000;

	if (snprintf(w->outbox, sizeof(w->outbox), "%s/outbox", conf->spool) >=
		(int)sizeof(w->outbox) ||
	    snprintf(w->dead, sizeof(w->dead), "%s/dead", w->outbox) >=
		(int)sizeof(w->dead)) {
		log_warnx("spool path '%s' is too long", conf->spool);
		return -ENAMETOOLONG;
	}
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
	if ((w->set = webhook_settings_new(conf)) == NULL)
		return -EINVAL;
	if ((w->sender = ladderd_sender_new(w->set->per_host,
		 WEBHOOK_MAX_IN_FLIGHT, w->backoff)) == NULL) {
		log_warnx("cannot create a libcurl multi handle");
		return -ENOMEM;
	}
	return 0;
}

int
ladderd_webhook_worker(const struct ladderd_conf *conf, const char *conf_file)
{
	struct webhook w = { .ifd = -1, .wd = -1, .sfd = -1 };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	struct sigaction old_pipe;
	sigset_t set, oldmask;
	bool curl_inited = false, signals = false;
	int rc;

	w.conf_file = conf_file;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("cannot initialise libcurl");
		rc = -ENOMEM;
		goto out;
	}
	curl_inited = true;
	/*
	 * SIGTERM/SIGINT/SIGHUP arrive through a signalfd the wait watches,
	 * so none is lost between a test and the wait. SIGPIPE is ignored:
	 * with CURLOPT_NOSIGNAL libcurl does not, and a receiver closing
	 * early must not kill us.
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
	if ((rc = webhook_setup(&w, conf)) < 0)
		goto out;
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
	log_info("notify worker: outbox '%s', %zu queue(s) pending", w.outbox,
	    w.ntasks);
	while (!w.stop) {
		int fds[2] = { w.ifd, w.sfd };
		uint64_t next, now;
		int ms = WEBHOOK_MAX_WAIT_MS;
		void *cookie;
		enum ladderd_send_result res;
		char reason[CURL_ERROR_SIZE + 128];

		if (w.reload)
			webhook_reload(&w);
		if (w.need_scan ||
		    (w.scan_due != 0 && w.scan_due <= webhook_now())) {
			w.need_scan = false;
			if ((rc = webhook_scan(&w)) < 0)
				log_warnx("cannot scan the outbox '%s': %s, "
					  "retrying in %llu s",
				    w.outbox, strerror(-rc),
				    WEBHOOK_RESCAN_US / 1000000);
		}
		webhook_run_due(&w);
		/* Wait for the nearest retry, a transfer, inotify, a signal. */
		next = webhook_next_due(&w);
		now = webhook_now();
		if (next != UINT64_MAX) {
			uint64_t d = next > now ? next - now : 0;

			d = (d + 999) / 1000;
			ms = d < WEBHOOK_MAX_WAIT_MS ? (int)d :
						       WEBHOOK_MAX_WAIT_MS;
		}
		if ((rc = ladderd_sender_wait(w.sender, fds, 2, ms)) < 0) {
			log_warnx("cannot wait for outbox events and "
				  "transfers");
			goto out;
		}
		webhook_read_signals(&w);
		while (ladderd_sender_next(w.sender, &cookie, &res, reason,
		    sizeof(reason))) {
			webhook_finish(&w, cookie, res, reason);
			free(cookie);
		}
		webhook_read_events(&w);
	}
	log_info("notify worker: stopping on signal %d, %zu queue(s) "
		 "pending, %u transfer(s) abandoned",
	    w.stop, w.ntasks,
	    w.sender ? ladderd_sender_in_flight(w.sender) : 0);
	rc = 0;
out:
	if (w.ifd >= 0)
		close(w.ifd);
	if (w.sfd >= 0)
		close(w.sfd);
	/*
	 * Abandoned transfers are not failures: their entries are still in
	 * the outbox, and the next run sends them (same webhook-id).
	 */
	ladderd_sender_free(w.sender);
	if (signals) {
		(void)sigprocmask(SIG_SETMASK, &oldmask, NULL);
		(void)sigaction(SIGPIPE, &old_pipe, NULL);
	}
	if (curl_inited)
		curl_global_cleanup();
	webhook_settings_free(w.set);
	free(w.tasks);
	return rc;
}
