/*
 * amqp.c - the AMQP 0-9-1 transport (amqp.h) on librabbitmq (rabbitmq-c).
 *
 * Confirms: the channel is in confirm mode, so the broker numbers our
 * publishes 1, 2, ... and acks (or nacks) each, alone or "multiple" up to
 * a tag. A publish is pending until then; a basic.return (mandatory, no
 * queue bound) arrives before the ack of the same message and turns it
 * into a retry. When the connection goes, every pending publish is a
 * retry: the broker may have it, so a consumer may see it twice (same
 * message_id), never miss it.
 *
 * librabbitmq reads frames into its own buffer: after a wake-up every
 * frame is drained (zero timeout) so none waits in the buffer while we
 * poll the socket. Connecting and the login block, bounded by
 * AMQP_CONNECT_TIMEOUT_S.
 *
 * XXX a publish blocks while the broker throttles us (a memory or disk
 * alarm holds the socket); the webhook queues wait with it.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "amqp.h"
#include "clock.h"
#include "ctx.h"
#include "log.h"

#define AMQP_CHANNEL 1
#define AMQP_CONNECT_TIMEOUT_S 5
#define AMQP_MAX_PENDING 1024		 /* publishes awaiting a confirm */
#define AMQP_MAX_BACKOFF_US (60ULL * 1000000)
#define AMQP_FRAMES_PER_DRIVE 100000	 /* bounded drain per wake-up */
#define AMQP_REASON_MAX 512

struct amqp_pending {
	uint64_t tag; /* the broker's delivery tag */
	void *cookie;
	char id[128]; /* message_id, to match a basic.return */
	bool returned;
};

struct amqp_result {
	void *cookie;
	enum ladderd_delivery res;
	char reason[AMQP_REASON_MAX];
};

struct amqp {
	/* settings */
	char *url;	  /* as configured (holds the password) */
	char *parsed;	  /* amqp_parse_url's buffer, `info` points into it */
	struct amqp_connection_info info;
	char *exchange, *routing_key;
	char where[300]; /* "host:port/vhost" for logs, never the password */
	/* connection */
	amqp_connection_state_t conn; /* NULL: down */
	uint64_t next_tag;
	uint64_t first_backoff, backoff, retry_at; /* monotonic us */
	char last_error[AMQP_REASON_MAX];
	long connects, losses;
	unsigned long changes; /* see transport.h's changes() */
	/* publishes */
	struct amqp_pending *pend; /* by tag, ascending */
	size_t npend;
	struct amqp_result *done;
	size_t ndone, donecap;
};

/* Queue a result for next(). Memory failure: the cookie is lost, the
 * entry is not (it stays in the outbox; a restart sends it). */
static void
amqp_push_result(struct amqp *a, void *cookie, enum ladderd_delivery res,
    const char *reason)
{
	struct amqp_result *r;

	if (a->ndone == a->donecap) {
		size_t ncap = a->donecap ? a->donecap * 2 : 64;

		if ((r = realloc(a->done, ncap * sizeof(*r))) == NULL) {
			free(cookie);
			return;
		}
		a->done = r;
		a->donecap = ncap;
	}
	r = &a->done[a->ndone++];
	r->cookie = cookie;
	r->res = res;
	(void)snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

/* What an RPC reply says, for the log ("ACCESS_REFUSED - ..."). */
static void
amqp_reply_text(amqp_rpc_reply_t r, const char *what, char *buf, size_t size)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		(void)snprintf(buf, size, "%s: ok", what);
		break;
	case AMQP_RESPONSE_NONE:
		(void)snprintf(buf, size, "%s: no reply", what);
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		(void)snprintf(buf, size, "%s: %s", what,
		    amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;

			(void)snprintf(buf, size, "%s: server closed the "
			    "connection: %u %.*s", what, m->reply_code,
			    (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;

			(void)snprintf(buf, size, "%s: server closed the "
			    "channel: %u %.*s", what, m->reply_code,
			    (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
		} else {
			(void)snprintf(buf, size, "%s: server error (method "
			    "0x%08x)", what, (unsigned)r.reply.id);
		}
		break;
	}
}

/*
 * The connection is gone (or we drop it): every pending publish is a
 * retry, the next connect is due after the backoff.
 */
static void
amqp_down(struct amqp *a, const char *why)
{
	size_t n = a->npend;

	if (a->conn != NULL) {
		amqp_destroy_connection(a->conn); /* closes the socket */
		a->conn = NULL;
		a->losses++;
		log_warnx("amqp: connection to %s lost: %s; %zu publish(es) "
			  "unconfirmed, retried",
		    a->where, why, n);
	}
	for (size_t i = 0; i < n; i++)
		amqp_push_result(a, a->pend[i].cookie, LADDERD_DELIVERY_RETRY,
		    why);
	a->npend = 0;
	(void)snprintf(a->last_error, sizeof(a->last_error), "%s", why);
	a->changes++;
	a->retry_at = ladderd_clock_mono_us() + a->backoff;
	a->backoff = a->backoff * 2 > AMQP_MAX_BACKOFF_US ?
	    AMQP_MAX_BACKOFF_US : a->backoff * 2;
}

/* Connect, log in, open the channel in confirm mode, check the exchange. */
static void
amqp_connect(struct amqp *a)
{
	struct timeval tv = { AMQP_CONNECT_TIMEOUT_S, 0 };
	char why[AMQP_REASON_MAX];
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	int st;

	if ((a->conn = amqp_new_connection()) == NULL) {
		a->retry_at = ladderd_clock_mono_us() + a->backoff;
		return;
	}
	sock = a->info.ssl ? amqp_ssl_socket_new(a->conn) :
			     amqp_tcp_socket_new(a->conn);
	if (sock == NULL) {
		(void)snprintf(why, sizeof(why), "cannot create a %s socket",
		    a->info.ssl ? "TLS" : "TCP");
		goto fail;
	}
	if (a->info.ssl) {
		amqp_ssl_socket_set_verify_peer(sock, 1);
		amqp_ssl_socket_set_verify_hostname(sock, 1);
	}
	(void)amqp_set_rpc_timeout(a->conn, &tv);
	if ((st = amqp_socket_open_noblock(sock, a->info.host, a->info.port,
		 &tv)) != AMQP_STATUS_OK) {
		(void)snprintf(why, sizeof(why), "cannot connect: %s",
		    amqp_error_string2(st));
		goto fail;
	}
	r = amqp_login(a->conn, a->info.vhost, 0, 131072, 0,
	    AMQP_SASL_METHOD_PLAIN, a->info.user, a->info.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_reply_text(r, "login refused", why, sizeof(why));
		goto fail;
	}
	amqp_channel_open(a->conn, AMQP_CHANNEL);
	if ((r = amqp_get_rpc_reply(a->conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL) {
		amqp_reply_text(r, "cannot open a channel", why, sizeof(why));
		goto fail;
	}
	amqp_confirm_select(a->conn, AMQP_CHANNEL);
	if ((r = amqp_get_rpc_reply(a->conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL) {
		amqp_reply_text(r, "no publisher confirms", why, sizeof(why));
		goto fail;
	}
	if (a->exchange[0] != '\0') {
		/* Passive: says 404 when it is missing, creates nothing. */
		amqp_exchange_declare(a->conn, AMQP_CHANNEL,
		    amqp_cstring_bytes(a->exchange), amqp_cstring_bytes(""), 1,
		    0, 0, 0, amqp_empty_table);
		if ((r = amqp_get_rpc_reply(a->conn)).reply_type !=
		    AMQP_RESPONSE_NORMAL) {
			char what[300];

			(void)snprintf(what, sizeof(what), "exchange '%.200s'",
			    a->exchange);
			amqp_reply_text(r, what, why, sizeof(why));
			goto fail;
		}
	}
	a->next_tag = 0;
	a->backoff = a->first_backoff;
	a->retry_at = 0;
	a->connects++;
	a->last_error[0] = '\0';
	a->changes++;
	log_info("amqp: connected to %s, publishing to exchange '%s' with "
		 "routing key '%s'",
	    a->where, a->exchange, a->routing_key);
	return;
fail:
	amqp_destroy_connection(a->conn);
	a->conn = NULL;
	log_warnx("amqp: %s: %s; retrying in %.1f s", a->where, why,
	    (double)a->backoff / 1e6);
	(void)snprintf(a->last_error, sizeof(a->last_error), "%s", why);
	a->changes++;
	a->retry_at = ladderd_clock_mono_us() + a->backoff;
	a->backoff = a->backoff * 2 > AMQP_MAX_BACKOFF_US ?
	    AMQP_MAX_BACKOFF_US : a->backoff * 2;
}

static bool
amqp_may_start(void *state, const char *dest, uint64_t now,
    uint64_t *ret_due)
{
	struct amqp *a = state;

	(void)dest;
	*ret_due = 0;
	if (a->conn == NULL) {
		/* drive() connects at retry_at; then there is room. */
		*ret_due = a->retry_at > now ? a->retry_at : UINT64_MAX;
		return false;
	}
	if (a->npend >= AMQP_MAX_PENDING) {
		*ret_due = UINT64_MAX; /* a confirm makes room */
		return false;
	}
	return true;
}

/* routing_key with every "{task_id}" replaced; -ENAMETOOLONG past 255. */
static int
amqp_routing_key(const struct amqp *a, const char *task, char *buf,
    size_t size)
{
	const char *p = a->routing_key, *hit;
	size_t n = 0, tl = strlen(task);

	while ((hit = strstr(p, "{task_id}")) != NULL) {
		size_t k = (size_t)(hit - p);

		if (n + k + tl >= size)
			return -ENAMETOOLONG;
		memcpy(buf + n, p, k);
		memcpy(buf + n + k, task, tl);
		n += k + tl;
		p = hit + strlen("{task_id}");
	}
	if (n + strlen(p) >= size)
		return -ENAMETOOLONG;
	memcpy(buf + n, p, strlen(p) + 1);
	return 0;
}

static int
amqp_start(void *state, const struct ladderd_outbox_event *ev, void *cookie,
    char *dest, size_t dsize, enum ladderd_delivery *ret_res, char *reason,
    size_t rsize)
{
	struct amqp *a = state;
	amqp_basic_properties_t props;
	struct amqp_pending *p;
	char rk[256]; /* AMQP short string */
	amqp_bytes_t body;
	int st;

	(void)snprintf(dest, dsize, "amqp");
	if (a->conn == NULL || a->npend >= AMQP_MAX_PENDING)
		return -EAGAIN;
	if (amqp_routing_key(a, ev->task, rk, sizeof(rk)) < 0) {
		*ret_res = LADDERD_DELIVERY_GIVE_UP;
		(void)snprintf(reason, rsize, "routing key longer than 255 "
		    "bytes");
		return 1;
	}
	if (strlen(ev->id) >= sizeof(a->pend[0].id)) {
		*ret_res = LADDERD_DELIVERY_GIVE_UP;
		(void)snprintf(reason, rsize, "id longer than 127 bytes");
		return 1;
	}
	if (a->pend == NULL &&
	    (a->pend = calloc(AMQP_MAX_PENDING, sizeof(*a->pend))) == NULL)
		return -ENOMEM;
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
	    AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.message_id = amqp_cstring_bytes(ev->id);
	props.timestamp = ev->created_ms / 1000;
	props.app_id = amqp_cstring_bytes("ladderd");
	body.bytes = (void *)(uintptr_t)ev->body;
	body.len = ev->bodylen;
	st = amqp_basic_publish(a->conn, AMQP_CHANNEL,
	    amqp_cstring_bytes(a->exchange), amqp_cstring_bytes(rk), 1, 0,
	    &props, body);
	if (st != AMQP_STATUS_OK) {
		char why[AMQP_REASON_MAX];

		(void)snprintf(why, sizeof(why), "cannot publish: %s",
		    amqp_error_string2(st));
		amqp_down(a, why);
		*ret_res = LADDERD_DELIVERY_RETRY;
		(void)snprintf(reason, rsize, "%s", why);
		return 1;
	}
	p = &a->pend[a->npend++];
	p->tag = ++a->next_tag;
	p->cookie = cookie;
	p->returned = false;
	(void)snprintf(p->id, sizeof(p->id), "%s", ev->id);
	return 0;
}

/* The broker acked (or nacked) `tag`, or all up to it with `multiple`. */
static void
amqp_confirmed(struct amqp *a, uint64_t tag, bool multiple, bool ack)
{
	size_t k = 0, i;

	for (i = 0; i < a->npend; i++) {
		struct amqp_pending *p = &a->pend[i];

		if (p->tag == tag || (multiple && p->tag < tag)) {
			if (!ack)
				amqp_push_result(a, p->cookie,
				    LADDERD_DELIVERY_RETRY,
				    "the broker refused it (nack)");
			else if (p->returned)
				amqp_push_result(a, p->cookie,
				    LADDERD_DELIVERY_RETRY,
				    "unroutable: no queue is bound to its "
				    "routing key");
			else
				amqp_push_result(a, p->cookie,
				    LADDERD_DELIVERY_DONE, "confirmed");
			continue;
		}
		a->pend[k++] = *p;
	}
	a->npend = k;
}

/* A basic.return: read the message it carries, mark its publish. */
static int
amqp_returned(struct amqp *a, amqp_channel_t ch)
{
	amqp_message_t msg;
	amqp_rpc_reply_t r = amqp_read_message(a->conn, ch, &msg, 0);

	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		return -EIO;
	if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		for (size_t i = 0; i < a->npend; i++)
			if (strlen(a->pend[i].id) ==
				msg.properties.message_id.len &&
			    memcmp(a->pend[i].id,
				msg.properties.message_id.bytes,
				msg.properties.message_id.len) == 0)
				a->pend[i].returned = true;
	amqp_destroy_message(&msg);
	return 0;
}

/* Read every frame that has arrived: confirms, returns, closes. */
static void
amqp_drive(void *state)
{
	struct amqp *a = state;
	char why[AMQP_REASON_MAX];

	if (a->conn == NULL) {
		if (a->retry_at <= ladderd_clock_mono_us())
			amqp_connect(a);
		return;
	}
	for (int i = 0; i < AMQP_FRAMES_PER_DRIVE; i++) {
		struct timeval zero = { 0, 0 };
		amqp_frame_t f;
		int st = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);

		if (st == AMQP_STATUS_TIMEOUT)
			break;
		if (st != AMQP_STATUS_OK) {
			amqp_down(a, amqp_error_string2(st));
			return;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue; /* heartbeats; no content is expected */
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *m = f.payload.method.decoded;

			amqp_confirmed(a, m->delivery_tag, m->multiple, true);
			break;
		}
		case AMQP_BASIC_NACK_METHOD: {
			amqp_basic_nack_t *m = f.payload.method.decoded;

			amqp_confirmed(a, m->delivery_tag, m->multiple, false);
			break;
		}
		case AMQP_BASIC_RETURN_METHOD:
			if (amqp_returned(a, f.channel) < 0) {
				amqp_down(a, "cannot read a returned message");
				return;
			}
			break;
		case AMQP_CHANNEL_CLOSE_METHOD: {
			amqp_channel_close_t *m = f.payload.method.decoded;

			(void)snprintf(why, sizeof(why), "server closed the "
			    "channel: %u %.*s", m->reply_code,
			    (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
			amqp_down(a, why);
			return;
		}
		case AMQP_CONNECTION_CLOSE_METHOD: {
			amqp_connection_close_t *m = f.payload.method.decoded;
			amqp_connection_close_ok_t ok = { 0 };

			(void)snprintf(why, sizeof(why), "server closed the "
			    "connection: %u %.*s", m->reply_code,
			    (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
			(void)amqp_send_method(a->conn, 0,
			    AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
			amqp_down(a, why);
			return;
		}
		default:
			break;
		}
		amqp_maybe_release_buffers(a->conn);
	}
}

static bool
amqp_next(void *state, void **ret_cookie, enum ladderd_delivery *ret_res,
    char *reason, size_t rsize)
{
	struct amqp *a = state;
	struct amqp_result r;

	if (a->ndone == 0)
		return false;
	r = a->done[0];
	memmove(&a->done[0], &a->done[1], (a->ndone - 1) * sizeof(r));
	a->ndone--;
	*ret_cookie = r.cookie;
	*ret_res = r.res;
	(void)snprintf(reason, rsize, "%s", r.reason);
	return true;
}

static int
amqp_fd(void *state)
{
	struct amqp *a = state;

	return a->conn != NULL ? amqp_get_sockfd(a->conn) : -1;
}

static uint64_t
amqp_next_due(void *state)
{
	struct amqp *a = state;

	/* Results waiting for next(), or a connect to try. */
	if (a->ndone > 0)
		return 0;
	return a->conn == NULL ? a->retry_at : UINT64_MAX;
}

static unsigned
amqp_in_flight(void *state)
{
	struct amqp *a = state;

	return (unsigned)a->npend;
}

static unsigned long
amqp_changes(void *state)
{
	return ((struct amqp *)state)->changes;
}

static void
amqp_describe(void *state, cJSON *obj)
{
	struct amqp *a = state;

	cJSON_AddBoolToObject(obj, "connected", a->conn != NULL);
	cJSON_AddStringToObject(obj, "broker", a->where);
	cJSON_AddNumberToObject(obj, "unconfirmed", (double)a->npend);
	cJSON_AddNumberToObject(obj, "connects", (double)a->connects);
	cJSON_AddNumberToObject(obj, "connections_lost", (double)a->losses);
	if (a->last_error[0] != '\0')
		cJSON_AddStringToObject(obj, "last_error", a->last_error);
}

/* Forget the settings; the URL holds the password: wipe it. */
static void
amqp_settings_free(struct amqp *a)
{
	size_t n = a->url != NULL ? strlen(a->url) : 0;

	if (a->url != NULL)
		explicit_bzero(a->url, n);
	if (a->parsed != NULL)
		explicit_bzero(a->parsed, n); /* same length, NULs inside */
	free(a->url);
	free(a->parsed);
	free(a->exchange);
	free(a->routing_key);
	a->url = a->parsed = a->exchange = a->routing_key = NULL;
}

/* The settings of conf's notify.amqp into `a`. Logs why it fails. */
static int
amqp_settings(struct amqp *a, const struct ladderd_conf *conf)
{
	const cJSON *n = ladderd_ctx_get(conf->notify, "amqp");
	const char *url = ladderd_ctx_str(n, "url", "");

	amqp_settings_free(a);
	a->url = strdup(url);
	a->parsed = strdup(url);
	a->exchange = strdup(ladderd_ctx_str(n, "exchange", ""));
	a->routing_key = strdup(ladderd_ctx_str(n, "routing_key",
	    "transcode-result"));
	if (a->url == NULL || a->parsed == NULL || a->exchange == NULL ||
	    a->routing_key == NULL)
		return -ENOMEM;
	amqp_default_connection_info(&a->info);
	if (amqp_parse_url(a->parsed, &a->info) != AMQP_STATUS_OK) {
		log_warnx("notify.amqp.url is not an amqp:// or amqps:// URL");
		return -EINVAL;
	}
	(void)snprintf(a->where, sizeof(a->where), "%s%s:%d/%s",
	    a->info.ssl ? "amqps://" : "", a->info.host, a->info.port,
	    a->info.vhost);
	return 0;
}

static void
amqp_free(void *state)
{
	struct amqp *a = state;

	if (a == NULL)
		return;
	if (a->conn != NULL) {
		/* Unconfirmed publishes stay in the outbox: sent again. */
		(void)amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(a->conn);
	}
	for (size_t i = 0; i < a->npend; i++)
		free(a->pend[i].cookie);
	for (size_t i = 0; i < a->ndone; i++)
		free(a->done[i].cookie);
	free(a->pend);
	free(a->done);
	amqp_settings_free(a);
	free(a);
}

static int
amqp_reload(void *state, const struct ladderd_conf *conf)
{
	struct amqp *a = state;
	const cJSON *n = ladderd_ctx_get(conf->notify, "amqp");
	struct amqp *fresh;
	int rc;

	if (strcmp(ladderd_ctx_str(n, "url", ""), a->url) == 0 &&
	    strcmp(ladderd_ctx_str(n, "exchange", ""), a->exchange) == 0 &&
	    strcmp(ladderd_ctx_str(n, "routing_key", "transcode-result"),
		a->routing_key) == 0) {
		a->backoff = a->first_backoff;
		if (a->conn == NULL)
			a->retry_at = 0; /* the broker may be back: try now */
		return 0;
	}
	/* Check the new settings before dropping the connection. */
	if ((fresh = calloc(1, sizeof(*fresh))) == NULL)
		return -ENOMEM;
	rc = amqp_settings(fresh, conf);
	amqp_free(fresh);
	if (rc < 0)
		return rc;
	amqp_down(a, "notify.amqp changed");
	if ((rc = amqp_settings(a, conf)) < 0)
		return rc;
	a->backoff = a->first_backoff;
	a->retry_at = 0;
	return 0;
}

int
ladderd_amqp_new(const struct ladderd_conf *conf, uint64_t backoff_us,
    struct ladderd_transport *ret)
{
	struct amqp *a = calloc(1, sizeof(*a));
	int rc;

	if (a == NULL)
		return -ENOMEM;
	if ((rc = amqp_settings(a, conf)) < 0) {
		amqp_free(a);
		return rc;
	}
	a->first_backoff = a->backoff = backoff_us;
	a->retry_at = 0; /* connect at the first drive */
	*ret = (struct ladderd_transport){
		.name = "amqp",
		.state = a,
		.may_start = amqp_may_start,
		.start = amqp_start,
		.next = amqp_next,
		.fd = amqp_fd,
		.next_due = amqp_next_due,
		.drive = amqp_drive,
		.reload = amqp_reload,
		.in_flight = amqp_in_flight,
		.describe = amqp_describe,
		.changes = amqp_changes,
		.free = amqp_free,
	};
	return 0;
}
