/*
 * webhook.c - the Standard Webhooks transport (webhook.h): settings from
 * the notify group, the checks a manifest's URL must pass, and the POST
 * itself through webhook_send.c. It decides nothing about order, retries
 * or dead letters: it says delivered, retry later or give up (outbox.c).
 *
 * Fails only while starting (webhook.h); later errors are results.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "ctx.h"
#include "log.h"
#include "netpolicy.h"
#include "sign.h"
#include "webhook.h"
#include "webhook_send.h"

#define WEBHOOK_MAX_IN_FLIGHT 64 /* transfers at once, in total */

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
	long timeout;		/* seconds */
	unsigned per_host;	/* notify.max_per_host */
};

struct webhook {
	struct webhook_settings *set;
	struct ladderd_sender *sender;
};

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

static bool
webhook_may_start(void *state, const char *dest, uint64_t now,
    uint64_t *ret_due)
{
	struct webhook *w = state;

	*ret_due = 0;
	if (dest[0] == '\0')
		return true; /* not known before the entry is read */
	return ladderd_sender_may_start(w->sender, dest, now, ret_due);
}

/* A result now: give up (or retry) with `why`. */
static int
webhook_now_result(enum ladderd_delivery res, enum ladderd_delivery *ret_res,
    char *reason, size_t rsize, const char *why)
{
	*ret_res = res;
	(void)snprintf(reason, rsize, "%s", why);
	return 1;
}

static int
webhook_start(void *state, const struct ladderd_outbox_event *ev,
    void *cookie, char *dest, size_t dsize, enum ladderd_delivery *ret_res,
    char *reason, size_t rsize)
{
	struct webhook *w = state;
	const struct webhook_settings *set = w->set;
	char host[256], why[512];
	const char *url = ev->url;
	uint64_t due;
	int rc;

	/*
	 * The operator's queue goes where the config says now (a reload
	 * may have changed it); the entry's URL only when none is set.
	 */
	if (!ev->manifest && set->url != NULL)
		url = set->url;
	if (ladderd_sender_dest(url, dest, dsize, host, sizeof(host)) < 0) {
		dest[0] = '\0';
		return webhook_now_result(LADDERD_DELIVERY_GIVE_UP, ret_res,
		    reason, rsize, "not an http(s) URL");
	}
	if (ev->manifest && !set->allow_manifest)
		return webhook_now_result(LADDERD_DELIVERY_GIVE_UP, ret_res,
		    reason, rsize, "manifest webhooks are not allowed "
				   "(notify.allow_manifest_webhook)");
	/* curl's parse of the host, the one it will connect to. */
	if (ev->manifest && !webhook_host_listed(set, host)) {
		(void)snprintf(why, sizeof(why), "host '%s' is not in "
		    "notify.manifest_webhook_hosts", host);
		return webhook_now_result(LADDERD_DELIVERY_GIVE_UP, ret_res,
		    reason, rsize, why);
	}
	if (!ladderd_sender_may_start(w->sender, dest, ladderd_clock_mono_us(), &due))
		return -EAGAIN;
	{
		struct ladderd_send_req req = {
			.url = url,
			.id = ev->id,
			.body = ev->body,
			.bodylen = ev->bodylen,
			/* Never the operator's secret for a drop's URL. */
			.key = ev->manifest ? set->mkey : set->key,
			.keylen = ev->manifest ? set->mkeylen : set->keylen,
			.timeout = set->timeout,
			.policy = ev->manifest ? &set->policy : NULL,
		};

		rc = ladderd_sender_start(w->sender, &req, cookie, reason,
		    rsize);
	}
	if (rc == -EAGAIN)
		return -EAGAIN;
	if (rc < 0) {
		*ret_res = LADDERD_DELIVERY_RETRY;
		return 1;
	}
	return 0;
}

static bool
webhook_next(void *state, void **ret_cookie, enum ladderd_delivery *ret_res,
    char *reason, size_t rsize)
{
	struct webhook *w = state;
	enum ladderd_send_result r;

	if (!ladderd_sender_next(w->sender, ret_cookie, &r, reason, rsize))
		return false;
	*ret_res = r == LADDERD_SEND_DELIVERED ? LADDERD_DELIVERY_DONE :
	    r == LADDERD_SEND_RETRY	       ? LADDERD_DELIVERY_RETRY :
						 LADDERD_DELIVERY_GIVE_UP;
	return true;
}

static int
webhook_wait(void *state, const int *fds, size_t nfds, int ms)
{
	struct webhook *w = state;

	return ladderd_sender_wait(w->sender, fds, nfds, ms);
}

static int
webhook_reload(void *state, const struct ladderd_conf *conf)
{
	struct webhook *w = state;
	struct webhook_settings *set = webhook_settings_new(conf);

	if (set == NULL)
		return -EINVAL;
	webhook_settings_free(w->set);
	w->set = set;
	ladderd_sender_set_per_dest(w->sender, set->per_host);
	/* The change may be what the failing destinations waited for. */
	ladderd_sender_reset_backoff(w->sender);
	return 0;
}

static unsigned
webhook_in_flight(void *state)
{
	struct webhook *w = state;

	return ladderd_sender_in_flight(w->sender);
}

static void
webhook_free(void *state)
{
	struct webhook *w = state;

	if (w == NULL)
		return;
	/*
	 * Abandoned transfers are not failures: their entries are still in
	 * the outbox, and the next run sends them (same webhook-id).
	 */
	ladderd_sender_free(w->sender);
	webhook_settings_free(w->set);
	free(w);
	curl_global_cleanup();
}

int
ladderd_webhook_new(const struct ladderd_conf *conf, uint64_t backoff_us,
    struct ladderd_transport *ret)
{
	struct webhook *w = NULL;
	int rc = -ENOMEM;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("cannot initialise libcurl");
		return -ENOMEM;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto fail;
	if ((w->set = webhook_settings_new(conf)) == NULL) {
		rc = -EINVAL;
		goto fail;
	}
	if ((w->sender = ladderd_sender_new(w->set->per_host,
		 WEBHOOK_MAX_IN_FLIGHT, backoff_us)) == NULL) {
		log_warnx("cannot create a libcurl multi handle");
		goto fail;
	}
	*ret = (struct ladderd_transport){
		.name = "webhook",
		.state = w,
		.may_start = webhook_may_start,
		.start = webhook_start,
		.next = webhook_next,
		.wait = webhook_wait,
		.reload = webhook_reload,
		.in_flight = webhook_in_flight,
		.free = webhook_free,
	};
	return 0;
fail:
	if (w != NULL) {
		ladderd_sender_free(w->sender);
		webhook_settings_free(w->set);
		free(w);
	}
	curl_global_cleanup();
	return rc;
}
