/*
 * webhook_send.h - concurrent webhook POSTs for the notify worker: one
 * libcurl multi handle, a limit of transfers in flight per destination
 * (scheme://host:port) and in total, and a backoff per destination after
 * it failed (refused, timed out, 5xx, 429), so one slow or dead receiver
 * neither delays the others nor is hammered by every task's retries.
 *
 * The sender knows nothing of the outbox: the caller (webhook.c) decides
 * what to send and what a result means for its entries. Owned by the
 * caller; single-threaded.
 */
#ifndef LADDERD_WEBHOOK_SEND_H
#define LADDERD_WEBHOOK_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netpolicy.h"

#define LADDERD_SEND_DEST_MAX 300 /* "scheme://host:port" */

enum ladderd_send_result {
	LADDERD_SEND_DELIVERED, /* 2xx */
	LADDERD_SEND_RETRY,	/* the receiver or the network may get better */
	LADDERD_SEND_REJECTED,	/* no retry can help: bury the entry */
};

struct ladderd_send_req {
	const char *url;
	const char *id;	  /* webhook-id */
	const char *body; /* copied */
	size_t bodylen;
	const uint8_t *key; /* HMAC key, NULL: unsigned */
	size_t keylen;
	long timeout;	  /* seconds, connect and whole transfer */
	const struct ladderd_netpolicy *policy; /* copied; NULL: trusted */
};

struct ladderd_sender;

/* NULL when libcurl cannot be set up. */
struct ladderd_sender *ladderd_sender_new(unsigned per_dest, unsigned total,
    uint64_t backoff_us);
/*
 * Aborts what is in flight (no result is reported; the cookies of those
 * transfers are freed with free()). NULL-safe.
 */
void ladderd_sender_free(struct ladderd_sender *s);
void ladderd_sender_set_per_dest(struct ladderd_sender *s, unsigned per_dest);
/* Forget every destination's backoff (a reload may have fixed them). */
void ladderd_sender_reset_backoff(struct ladderd_sender *s);

/*
 * The destination key of `url` ("https://hooks.example:443"), and its host
 * alone (lowercase) in `host` if not NULL. -EINVAL: not an http(s) URL.
 */
int ladderd_sender_dest(const char *url, char *dest, size_t size,
    char *host, size_t hostsize);

/*
 * Whether a POST to `dest` may start at monotonic time `now`. When not
 * because of the destination's backoff, *ret_due is when it may; when the
 * in-flight limits are reached, *ret_due is UINT64_MAX (a finishing
 * transfer makes room).
 */
bool ladderd_sender_may_start(const struct ladderd_sender *s,
    const char *dest, uint64_t now, uint64_t *ret_due);

/*
 * Start one POST; `cookie` (malloc'd) is the sender's on success and comes
 * back with the result; on failure it stays the caller's. 0, -EAGAIN (a
 * limit is reached), -ENOMEM, -EINVAL (libcurl refused an option; `reason`
 * says why).
 */
int ladderd_sender_start(struct ladderd_sender *s,
    const struct ladderd_send_req *req, void *cookie, char *reason,
    size_t rsize);

/*
 * Wait up to timeout_ms for the transfers and for `fds` (readable), then
 * drive the transfers. Returns 0 or a negative errno.
 */
int ladderd_sender_wait(struct ladderd_sender *s, const int *fds, size_t nfds,
    int timeout_ms);

/*
 * The next finished transfer: true with its cookie, result and `reason`
 * ("HTTP 503", "cannot connect", ...; never the URL, which may hold a
 * token), false when none is left.
 */
bool ladderd_sender_next(struct ladderd_sender *s, void **ret_cookie,
    enum ladderd_send_result *ret_result, char *reason, size_t rsize);

unsigned ladderd_sender_in_flight(const struct ladderd_sender *s);

#endif
