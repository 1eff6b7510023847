/*
 * transport.h - what the outbox (outbox.h) asks of a transport: deliver
 * one event and say how it went. A transport knows nothing of files,
 * order, backoff or dead letters; the outbox knows nothing of HTTP or
 * AMQP. Two transports exist: webhook.c (Standard Webhooks POST, the
 * operator's and a manifest's queues) and amqp.c (AMQP 0-9-1 publish with
 * publisher confirms).
 *
 * Single-threaded. A delivery either finishes at once (start() returns 1
 * with its result) or later: start() returns 0, and next() hands back the
 * caller's cookie with the result once the transport knows it (a 2xx, a
 * broker's confirm). A transport that is freed with deliveries in flight
 * reports none of them: their entries are still in the outbox and are
 * sent again by the next run (at least once).
 */
#ifndef LADDERD_TRANSPORT_H
#define LADDERD_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

enum ladderd_delivery {
	LADDERD_DELIVERY_DONE,	  /* delivered: the entry may go */
	LADDERD_DELIVERY_RETRY,	  /* may work later: backoff, then again */
	LADDERD_DELIVERY_GIVE_UP, /* no retry can help: dead letter */
};

/* One event to deliver; borrowed for the duration of start(). */
struct ladderd_outbox_event {
	const char *task; /* task id */
	long seq;
	bool manifest;	  /* a manifest's own webhook queue */
	const char *id;	  /* "<task>-<seq>": webhook-id, AMQP message_id */
	const char *url;  /* the URL the entry was written with, or "" */
	const char *body; /* the event, exact JSON bytes */
	size_t bodylen;
	uint64_t created_ms; /* wall clock, when it was written */
};

struct ladderd_transport {
	const char *name; /* "webhook", "amqp": logs, metrics */
	void *state;
	/*
	 * Whether a delivery to `dest` (what start() filled in earlier, ""
	 * when not known) may start at monotonic us `now`. When not, *ret_due
	 * is when it may, or UINT64_MAX when a finishing delivery (or a
	 * connection coming up) makes room.
	 */
	bool (*may_start)(void *state, const char *dest, uint64_t now,
	    uint64_t *ret_due);
	/*
	 * Start delivering `ev`; `cookie` (malloc'd) is the transport's when
	 * this returns 0 and comes back from next(). Returns 0 (started), 1
	 * (finished now: *ret_res, `reason`; the cookie stays the caller's)
	 * or -EAGAIN (no room now; may_start says when). `dest` receives the
	 * destination key may_start understands.
	 */
	int (*start)(void *state, const struct ladderd_outbox_event *ev,
	    void *cookie, char *dest, size_t dsize,
	    enum ladderd_delivery *ret_res, char *reason, size_t rsize);
	/* The next finished delivery, false when none is left. */
	bool (*next)(void *state, void **ret_cookie,
	    enum ladderd_delivery *ret_res, char *reason, size_t rsize);
	/* An fd to wait for (readable), or -1. Optional. */
	int (*fd)(void *state);
	/* Monotonic us of its own next timer (reconnect). Optional. */
	uint64_t (*next_due)(void *state);
	/* After a wait: read what arrived, reconnect when due. Optional. */
	void (*drive)(void *state);
	/*
	 * Wait up to `ms` for the transport and `fds`; at most one transport
	 * has it (libcurl's multi wait), the outbox poll()s otherwise.
	 */
	int (*wait)(void *state, const int *fds, size_t nfds, int ms);
	/* New settings (SIGHUP); a negative errno keeps the old ones. */
	int (*reload)(void *state, const struct ladderd_conf *conf);
	unsigned (*in_flight)(void *state);
	/* Its state for _notify.json ("connected", "last_error"). Optional. */
	void (*describe)(void *state, cJSON *obj);
	/*
	 * A count that moves whenever what describe() says changes (a
	 * connection made or lost), so the outbox rewrites _notify.json
	 * although no delivery finished. Optional.
	 */
	unsigned long (*changes)(void *state);
	void (*free)(void *state);
};

#endif
