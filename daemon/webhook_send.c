/*
 * webhook_send.c - concurrent webhook POSTs (see webhook_send.h).
 *
 * Every transfer is an easy handle on one multi handle; its struct
 * sender_xfer (CURLOPT_PRIVATE) owns the body copy, the headers and the
 * address policy the socket callback reads, so nothing it points to can
 * change while libcurl works. Destinations are counted by key
 * "scheme://host:port": in flight, consecutive failures, and the monotonic
 * time before which no new transfer starts (exponential backoff from
 * `backoff_us`, at most 5 minutes).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "netpolicy_curl.h"
#include "sign.h"
#include "webhook_send.h"

#if !CURL_AT_LEAST_VERSION(7, 85, 0)
#error "the notify worker needs libcurl >= 7.85 (CURLOPT_PROTOCOLS_STR)"
#endif

#define SENDER_MAX_BACKOFF_US (300ULL * 1000000)
#define SENDER_MAX_FDS 4
#define SENDER_KEEP_DESTS 64 /* idle, healthy destinations kept */

struct sender_dest {
	char key[LADDERD_SEND_DEST_MAX];
	unsigned in_flight;
	unsigned failures; /* consecutive */
	uint64_t due;	   /* no new transfer before (monotonic us) */
};

struct sender_xfer {
	struct sender_xfer *prev, *next; /* the sender's list */
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	void *cookie;
	char dest[LADDERD_SEND_DEST_MAX];
	struct ladderd_netpolicy policy;
	bool checked; /* policy applies (a URL from a drop) */
	char errbuf[CURL_ERROR_SIZE];
};

struct ladderd_sender {
	CURLM *multi;
	unsigned per_dest, total, in_flight;
	uint64_t backoff_us;
	struct sender_dest *dests;
	size_t ndests;
	struct sender_xfer *xfers; /* in flight */
};

struct ladderd_sender *
ladderd_sender_new(unsigned per_dest, unsigned total, uint64_t backoff_us)
{
	struct ladderd_sender *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if ((s->multi = curl_multi_init()) == NULL) {
		free(s);
		return NULL;
	}
	s->per_dest = per_dest ? per_dest : 1;
	s->total = total ? total : 1;
	s->backoff_us = backoff_us;
	return s;
}

static void
sender_xfer_free(struct sender_xfer *x)
{
	if (x == NULL)
		return;
	free(x->cookie); /* NULL once handed back by ladderd_sender_next() */
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	free(x->body);
	free(x);
}

/* Take x off the multi handle and the list, and free it. */
static void
sender_drop(struct ladderd_sender *s, struct sender_xfer *x)
{
	(void)curl_multi_remove_handle(s->multi, x->easy);
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		s->xfers = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	if (s->in_flight > 0)
		s->in_flight--;
	sender_xfer_free(x);
}

void
ladderd_sender_free(struct ladderd_sender *s)
{
	if (s == NULL)
		return;
	while (s->xfers != NULL)
		sender_drop(s, s->xfers);
	curl_multi_cleanup(s->multi);
	free(s->dests);
	free(s);
}

void
ladderd_sender_set_per_dest(struct ladderd_sender *s, unsigned per_dest)
{
	s->per_dest = per_dest ? per_dest : 1;
}

void
ladderd_sender_reset_backoff(struct ladderd_sender *s)
{
	for (size_t i = 0; i < s->ndests; i++) {
		s->dests[i].failures = 0;
		s->dests[i].due = 0;
	}
}

unsigned
ladderd_sender_in_flight(const struct ladderd_sender *s)
{
	return s->in_flight;
}

int
ladderd_sender_dest(const char *url, char *dest, size_t size, char *host,
    size_t hostsize)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *port = NULL;
	int rc = -EINVAL, n;

	if (u == NULL)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
		goto out;
	for (char *p = h; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	n = snprintf(dest, size, "%s://%s:%s", scheme, h, port);
	if (n < 0 || (size_t)n >= size)
		goto out;
	if (host != NULL &&
	    ((n = snprintf(host, hostsize, "%s", h)) < 0 ||
		(size_t)n >= hostsize))
		goto out;
	rc = 0;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static struct sender_dest *
sender_find(const struct ladderd_sender *s, const char *key)
{
	for (size_t i = 0; i < s->ndests; i++)
		if (strcmp(s->dests[i].key, key) == 0)
			return &s->dests[i];
	return NULL;
}

/* The destination `key`, added when new; NULL when out of memory. */
static struct sender_dest *
sender_get(struct ladderd_sender *s, const char *key)
{
	struct sender_dest *d = sender_find(s, key), *nd;

	if (d != NULL)
		return d;
	/* Forget idle, healthy destinations before growing. */
	if (s->ndests >= SENDER_KEEP_DESTS) {
		size_t k = 0;

		for (size_t i = 0; i < s->ndests; i++)
			if (s->dests[i].in_flight != 0 ||
			    s->dests[i].failures != 0)
				s->dests[k++] = s->dests[i];
		s->ndests = k;
	}
	if ((nd = realloc(s->dests, (s->ndests + 1) * sizeof(*nd))) == NULL)
		return NULL;
	s->dests = nd;
	d = &s->dests[s->ndests++];
	memset(d, 0, sizeof(*d));
	(void)snprintf(d->key, sizeof(d->key), "%s", key);
	return d;
}

bool
ladderd_sender_may_start(const struct ladderd_sender *s, const char *dest,
    uint64_t now, uint64_t *ret_due)
{
	const struct sender_dest *d = sender_find(s, dest);

	*ret_due = 0;
	if (s->in_flight >= s->total ||
	    (d != NULL && d->in_flight >= s->per_dest)) {
		*ret_due = UINT64_MAX;
		return false;
	}
	if (d != NULL && d->due > now) {
		*ret_due = d->due;
		return false;
	}
	return true;
}

static size_t
sender_discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb; /* the answer's body means nothing to us */
}

int
ladderd_sender_start(struct ladderd_sender *s,
    const struct ladderd_send_req *req, void *cookie, char *reason,
    size_t rsize)
{
	struct sender_xfer *x = NULL;
	struct sender_dest *d;
	char h[600], ts[32], sig[LADDERD_SIGN_B64_SIZE];
	struct curl_slist *nh;
	uint64_t due;
	int rc = -ENOMEM;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		goto nomem;
	if (ladderd_sender_dest(req->url, x->dest, sizeof(x->dest), NULL,
		0) < 0) {
		(void)snprintf(reason, rsize, "not an http(s) URL");
		rc = -EINVAL;
		goto out;
	}
	if (!ladderd_sender_may_start(s, x->dest, ladderd_clock_mono_us(), &due)) {
		rc = -EAGAIN;
		goto out;
	}
	if ((d = sender_get(s, x->dest)) == NULL)
		goto nomem;
	if ((x->body = malloc(req->bodylen + 1)) == NULL)
		goto nomem;
	memcpy(x->body, req->body, req->bodylen);
	x->body[req->bodylen] = '\0';
	(void)snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	if (snprintf(h, sizeof(h), "webhook-id: %s", req->id) >=
	    (int)sizeof(h)) {
		(void)snprintf(reason, rsize, "webhook id is too long");
		rc = -EINVAL;
		goto out;
	}
	if ((nh = curl_slist_append(x->hdrs, h)) == NULL)
		goto nomem;
	x->hdrs = nh;
	(void)snprintf(h, sizeof(h), "webhook-timestamp: %s", ts);
	if ((nh = curl_slist_append(x->hdrs, h)) == NULL ||
	    (x->hdrs = nh,
		nh = curl_slist_append(x->hdrs,
		    "Content-Type: application/json")) == NULL ||
	    (x->hdrs = nh,
		/* no 100-continue round trip */
		nh = curl_slist_append(x->hdrs, "Expect:")) == NULL)
		goto nomem;
	x->hdrs = nh;
	if (req->key != NULL) {
		if (ladderd_sign_webhook(req->key, req->keylen, req->id, ts,
			req->body, req->bodylen, sig, sizeof(sig)) < 0) {
			(void)snprintf(reason, rsize, "cannot sign the event");
			rc = -EIO;
			goto out;
		}
		(void)snprintf(h, sizeof(h), "webhook-signature: v1,%s", sig);
		if ((nh = curl_slist_append(x->hdrs, h)) == NULL)
			goto nomem;
		x->hdrs = nh;
	}
	if ((x->easy = curl_easy_init()) == NULL)
		goto nomem;
	/* Each of these must hold, or the request is not sent at all. */
	if (curl_easy_setopt(x->easy, CURLOPT_URL, req->url) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https") !=
		CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L) !=
		CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT, req->timeout) !=
		CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, req->timeout) !=
		CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body) !=
		CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		(curl_off_t)req->bodylen) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs) !=
		CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION,
		sender_discard) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf) !=
		CURLE_OK) {
		(void)snprintf(reason, rsize, "cannot set up libcurl");
		rc = -EINVAL;
		goto out;
	}
	if (req->policy != NULL) {
		x->policy = *req->policy;
		x->policy.refused = 0;
		x->checked = true;
		if (ladderd_netpolicy_curl(x->easy, &x->policy) < 0) {
			(void)snprintf(reason, rsize,
			    "cannot set the address policy");
			rc = -EINVAL;
			goto out;
		}
	}
	(void)curl_easy_setopt(x->easy, CURLOPT_USERAGENT,
	    "ladderd/" PACKAGE_VERSION);
	if (curl_multi_add_handle(s->multi, x->easy) != CURLM_OK)
		goto nomem;
	x->cookie = cookie; /* ours from here on */
	x->next = s->xfers;
	if (s->xfers != NULL)
		s->xfers->prev = x;
	s->xfers = x;
	d->in_flight++;
	s->in_flight++;
	return 0;
nomem:
	(void)snprintf(reason, rsize, "out of memory");
	rc = -ENOMEM;
out:
	sender_xfer_free(x);
	return rc;
}

int
ladderd_sender_wait(struct ladderd_sender *s, const int *fds, size_t nfds,
    int timeout_ms)
{
	struct curl_waitfd wfd[SENDER_MAX_FDS];
	int running = 0;

	if (nfds > SENDER_MAX_FDS)
		return -EINVAL;
	for (size_t i = 0; i < nfds; i++) {
		wfd[i].fd = fds[i];
		wfd[i].events = CURL_WAIT_POLLIN;
		wfd[i].revents = 0;
	}
	if (curl_multi_poll(s->multi, wfd, (unsigned)nfds, timeout_ms, NULL) !=
	    CURLM_OK)
		return -EIO;
	if (curl_multi_perform(s->multi, &running) != CURLM_OK)
		return -EIO;
	return 0;
}

/* Whether `res` (and HTTP `code`) says the destination is in trouble. */
static bool
sender_dest_trouble(CURLcode res, long code)
{
	if (res == CURLE_OK)
		return code >= 500 || code == 429;
	return res != CURLE_UNSUPPORTED_PROTOCOL &&
	    res != CURLE_URL_MALFORMAT && res != CURLE_OUT_OF_MEMORY;
}

bool
ladderd_sender_next(struct ladderd_sender *s, void **ret_cookie,
    enum ladderd_send_result *ret_result, char *reason, size_t rsize)
{
	struct sender_xfer *x = NULL;
	struct sender_dest *d;
	CURLMsg *m;
	CURLcode res;
	long code = 0;
	int left;

	while ((m = curl_multi_info_read(s->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE)
			break;
	if (m == NULL)
		return false;
	res = m->data.result;
	(void)curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
	(void)curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
	*ret_cookie = x->cookie;
	x->cookie = NULL; /* the caller's again */
	if (res == CURLE_OK) {
		(void)snprintf(reason, rsize, "HTTP %ld", code);
		*ret_result = code >= 200 && code <= 299 ?
		    LADDERD_SEND_DELIVERED : LADDERD_SEND_RETRY;
	} else if (x->checked && x->policy.refused > 0) {
		/* The worker's log is the operator's: it may say why. */
		(void)snprintf(reason, rsize, "cannot connect: address "
					      "refused by notify.allow_networks");
		*ret_result = LADDERD_SEND_REJECTED;
	} else {
		(void)snprintf(reason, rsize, "%s",
		    x->errbuf[0] ? x->errbuf : curl_easy_strerror(res));
		/* No retry turns a refused URL into a good one. */
		*ret_result = res == CURLE_UNSUPPORTED_PROTOCOL ||
			res == CURLE_URL_MALFORMAT ?
		    LADDERD_SEND_REJECTED : LADDERD_SEND_RETRY;
	}
	if ((d = sender_find(s, x->dest)) != NULL) {
		if (d->in_flight > 0)
			d->in_flight--;
		if (*ret_result == LADDERD_SEND_DELIVERED) {
			d->failures = 0;
			d->due = 0;
		} else if (sender_dest_trouble(res, code)) {
			unsigned shift = d->failures < 16 ? d->failures : 16;
			uint64_t delay = s->backoff_us << shift;

			d->failures++;
			if (delay > SENDER_MAX_BACKOFF_US)
				delay = SENDER_MAX_BACKOFF_US;
			d->due = ladderd_clock_mono_us() + delay;
		}
	}
	sender_drop(s, x);
	return true;
}
