/*
 * metrics.h - status/_metrics.prom, the daemon's numbers in the Prometheus
 * text format (exposition format 0.0.4), for node_exporter's textfile
 * collector (point --collector.textfile.directory at the status folder, or
 * link the file). The supervisor owns one struct ladderd_metrics, counts
 * into it, and calls ladderd_metrics_write() at most once a second when
 * something changed; the file is replaced atomically (a temp name not
 * ending in .prom, then rename).
 */
#ifndef LADDERD_METRICS_H
#define LADDERD_METRICS_H

#include <stddef.h>
#include <time.h>

#include <cjson/cJSON.h>

#define LADDERD_METRICS_BUCKETS 10

struct ladderd_metrics_hist {
	unsigned long bucket[LADDERD_METRICS_BUCKETS]; /* not cumulative */
	unsigned long count;
	double sum;
};

/* Counters since the daemon started; zero-initialise. */
struct ladderd_metrics {
	time_t started;
	unsigned long queued, complete, failed, deferred, cancelled;
	unsigned long refused; /* refused at ingest (also counted failed) */
	unsigned long config_errors;
	struct ladderd_metrics_hist encode_seconds, encode_fps;
};

/* What the supervisor sees now. */
struct ladderd_metrics_gauges {
	size_t queue_length, deferred;
	int running_jobs, running_units;
	const cJSON *notify; /* _notify.json, NULL: not known */
};

/*
 * A finished task's rungs (status.json "rungs": elapsed, frames) go into
 * the encode histograms; internal units ("_decode") are not rungs.
 */
void ladderd_metrics_rungs(struct ladderd_metrics *m, const cJSON *status);

/* Rungs of a running task's status.json still encoding. */
int ladderd_metrics_running_units(const cJSON *status);

/* Write <status_dir>/_metrics.prom. Returns 0 or a negative errno. */
int ladderd_metrics_write(const struct ladderd_metrics *m,
    const struct ladderd_metrics_gauges *g, const char *status_dir);

#endif
