/*
 * metrics.c - status/_metrics.prom (metrics.h). Only counts and formats:
 * the supervisor decides when (at most once a second, when something
 * changed). Every family has HELP and TYPE lines; counters end in _total;
 * histograms have cumulative _bucket{le=...} lines up to +Inf, _sum and
 * _count. Label values are the transport names ("webhook", "amqp") and
 * fixed state names, nothing from a drop.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "fsutil.h"
#include "metrics.h"

static const double seconds_le[LADDERD_METRICS_BUCKETS] = { 0.5, 1, 2, 5, 10,
	30, 60, 300, 900, 3600 };
static const double fps_le[LADDERD_METRICS_BUCKETS] = { 1, 5, 10, 25, 50,
	100, 200, 400, 800, 1600 };

static void
hist_observe(struct ladderd_metrics_hist *h, const double *le, double v)
{
	int i;

	for (i = 0; i < LADDERD_METRICS_BUCKETS && v > le[i]; i++)
		;
	if (i < LADDERD_METRICS_BUCKETS)
		h->bucket[i]++;
	h->count++;
	h->sum += v;
}

void
ladderd_metrics_rungs(struct ladderd_metrics *m, const cJSON *status)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, ladderd_ctx_get(status, "rungs")) {
		double el = ladderd_ctx_num(r, "elapsed", -1);
		double frames = ladderd_ctx_num(r, "frames", -1);

		if (r->string == NULL || r->string[0] == '_' || el <= 0)
			continue;
		hist_observe(&m->encode_seconds, seconds_le, el);
		if (frames > 0)
			hist_observe(&m->encode_fps, fps_le, frames / el);
	}
}

int
ladderd_metrics_running_units(const cJSON *status)
{
	const cJSON *r;
	int n = 0;

	cJSON_ArrayForEach(r, ladderd_ctx_get(status, "rungs"))
		if (strcmp(ladderd_ctx_str(r, "state", ""), "transcoding") == 0 &&
		    ladderd_ctx_num(r, "progress", 0) < 1)
			n++;
	return n;
}

/* A growing buffer; `err` sticks once set. */
struct buf {
	char *p;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3))) static void
put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL,
		    b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if (b->p != NULL && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t ncap = b->cap ? b->cap * 2 : 4096;
			char *np;

			while (ncap < b->len + (size_t)n + 1)
				ncap *= 2;
			if ((np = realloc(b->p, ncap)) == NULL) {
				b->err = -ENOMEM;
				return;
			}
			b->p = np;
			b->cap = ncap;
		}
	}
}

static void
family(struct buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
hist(struct buf *b, const char *name, const char *help,
    const struct ladderd_metrics_hist *h, const double *le)
{
	unsigned long cum = 0;

	family(b, name, "histogram", help);
	for (int i = 0; i < LADDERD_METRICS_BUCKETS; i++) {
		cum += h->bucket[i];
		put(b, "%s_bucket{le=\"%g\"} %lu\n", name, le[i], cum);
	}
	put(b, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %.6f\n%s_count %lu\n", name,
	    h->count, name, h->sum, name, h->count);
}

/* One family over the transports of _notify.json. */
static void
per_transport(struct buf *b, const cJSON *trs, const char *name,
    const char *type, const char *key, const char *help)
{
	const cJSON *t;

	family(b, name, type, help);
	cJSON_ArrayForEach(t, trs)
		if (t->string != NULL)
			put(b, "%s{transport=\"%s\"} %.0f\n", name, t->string,
			    ladderd_ctx_num(t, key, 0));
}

int
ladderd_metrics_write(const struct ladderd_metrics *m,
    const struct ladderd_metrics_gauges *g, const char *status_dir)
{
	struct buf b = { 0 };
	const cJSON *trs = ladderd_ctx_get(g->notify, "transports");
	const cJSON *amqp = ladderd_ctx_get(trs, "amqp");
	char path[PATH_MAX];
	int rc;

	family(&b, "ladderd_start_time_seconds", "gauge",
	    "When the daemon started, seconds since the epoch.");
	put(&b, "ladderd_start_time_seconds %lld\n", (long long)m->started);
	family(&b, "ladderd_tasks_total", "counter",
	    "Tasks that reached a state since the daemon started (failed "
	    "includes refused drops).");
	put(&b, "ladderd_tasks_total{state=\"queued\"} %lu\n", m->queued);
	put(&b, "ladderd_tasks_total{state=\"complete\"} %lu\n", m->complete);
	put(&b, "ladderd_tasks_total{state=\"failed\"} %lu\n", m->failed);
	put(&b, "ladderd_tasks_total{state=\"deferred\"} %lu\n", m->deferred);
	put(&b, "ladderd_tasks_total{state=\"cancelled\"} %lu\n",
	    m->cancelled);
	family(&b, "ladderd_refused_drops_total", "counter",
	    "Drops refused at ingest since the daemon started.");
	put(&b, "ladderd_refused_drops_total %lu\n", m->refused);
	family(&b, "ladderd_queue_length", "gauge",
	    "Tasks waiting for a job slot.");
	put(&b, "ladderd_queue_length %zu\n", g->queue_length);
	family(&b, "ladderd_deferred_tasks", "gauge",
	    "Tasks waiting to be retried after a transient failure.");
	put(&b, "ladderd_deferred_tasks %zu\n", g->deferred);
	family(&b, "ladderd_running_jobs", "gauge", "Task jobs running.");
	put(&b, "ladderd_running_jobs %d\n", g->running_jobs);
	family(&b, "ladderd_running_units", "gauge",
	    "Rungs of running tasks still encoding.");
	put(&b, "ladderd_running_units %d\n", g->running_units);
	hist(&b, "ladderd_rung_encode_seconds",
	    "Wall time of each finished rung, seconds.", &m->encode_seconds,
	    seconds_le);
	hist(&b, "ladderd_rung_encode_fps",
	    "Frames per second of each finished video rung.", &m->encode_fps,
	    fps_le);
	per_transport(&b, trs, "ladderd_outbox_backlog", "gauge", "backlog",
	    "Events in the outbox waiting for a transport.");
	per_transport(&b, trs, "ladderd_outbox_delivered_total", "counter",
	    "delivered", "Events a transport delivered since the notify worker started.");
	per_transport(&b, trs, "ladderd_outbox_failed_total", "counter",
	    "failed", "Failed delivery attempts since the notify worker started.");
	per_transport(&b, trs, "ladderd_outbox_dead_total", "counter",
	    "dead", "Events given up on (outbox/dead) since the notify worker "
	    "started.");
	if (amqp != NULL) {
		family(&b, "ladderd_amqp_connected", "gauge",
		    "1 when the AMQP transport is connected to its broker.");
		put(&b, "ladderd_amqp_connected %d\n",
		    ladderd_ctx_bool(amqp, "connected", 0) ? 1 : 0);
	}
	family(&b, "ladderd_config_load_errors_total", "counter",
	    "Configuration reloads refused since the daemon started.");
	put(&b, "ladderd_config_load_errors_total %lu\n", m->config_errors);
	if ((rc = b.err) < 0)
		goto out;
	if (snprintf(path, sizeof(path), "%s/_metrics.prom", status_dir) >=
	    (int)sizeof(path)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = ladderd_fsutil_write_atomic(path, b.p, b.len);
out:
	free(b.p);
	return rc;
}
