/*
 * operator.c - the operator's commands on the daemon's tasks:
 *
 *   ladderd status [-c FILE] [ID...] [--json]  what is queued, running,
 *                       deferred, recently complete or failed; one task's
 *                       rungs and last events
 *   ladderd cancel [-c FILE] ID                 stop a queued or running task
 *   ladderd retry [-c FILE] ID                  queue a failed task again
 *
 * status only reads the spool's markers and the status folder, so it works
 * whether the daemon runs or not. cancel and retry ask the daemon through
 * spool/requests (request.h) and wait for its reply: the daemon alone moves
 * tasks, so nothing races its event loop. With no daemon running the
 * request waits on disk for its next start (exit 75 says so).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conf.h"
#include "ctx.h"
#include "exitcode.h"
#include "fsutil.h"
#include "operator.h"
#include "request.h"
#include "spool.h"
#include "status.h"

#define OP_RECENT 20	      /* complete/failed tasks listed without ids */
#define OP_EVENTS 10	      /* events shown for one task */
#define OP_REPLY_MS 30000     /* how long cancel/retry wait for the daemon */

struct op_task {
	char id[80];
	char state[16];	 /* queued running deferred complete failed */
	char time[40];	 /* of the last event, for sorting */
	cJSON *status;	 /* status.json, or NULL */
};

/* The daemon's pid when one holds the spool, else 0. */
static long
op_daemon_pid(const struct ladderd_conf *c)
{
	char p[PATH_MAX], *text = NULL;
	long pid = 0;

	if (ladderd_spool_path(c->spool, "ladderd.pid", NULL, p, sizeof(p)) <
		0 ||
	    ladderd_fsutil_read(p, 64, &text, NULL) < 0)
		return 0;
	pid = strtol(text, NULL, 10);
	free(text);
	/* The lock file keeps the last pid: is that process still there? */
	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM))
		return 0;
	return pid;
}

static cJSON *
op_load_status(const struct ladderd_conf *c, const char *id)
{
	char p[PATH_MAX];
	cJSON *st = NULL;

	if (ladderd_status_path(c->status, id, LADDERD_STATUS_JSON, p,
		sizeof(p)) < 0)
		return NULL;
	(void)ladderd_ctx_load(p, &st);
	return st;
}

static void
op_add(struct op_task **v, size_t *n, const struct ladderd_conf *c,
    const char *id, const char *state)
{
	struct op_task *t, *nv;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].id, id) == 0)
			return; /* a marker in two states mid-rename */
	if ((nv = realloc(*v, (*n + 1) * sizeof(**v))) == NULL)
		return;
	*v = nv;
	t = &nv[(*n)++];
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	snprintf(t->state, sizeof(t->state), "%s", state);
	t->status = op_load_status(c, id);
	snprintf(t->time, sizeof(t->time), "%s",
	    ladderd_ctx_str(t->status, "time", ""));
}

static int
op_newest_first(const void *a, const void *b)
{
	return strcmp(((const struct op_task *)b)->time,
	    ((const struct op_task *)a)->time);
}

/*
 * Every task the spool holds (running, queued in FIFO order, deferred),
 * then the newest OP_RECENT complete or failed ones of the status folder.
 */
static void
op_collect(const struct ladderd_conf *c, struct op_task **ret, size_t *ret_n)
{
	static const char *const dirs[3] = { "active", "queue", "deferred" };
	static const char *const names[3] = { "running", "queued", "deferred" };
	struct op_task *v = NULL, *done = NULL;
	size_t n = 0, nd = 0;
	DIR *d;
	struct dirent *de;

	for (int k = 0; k < 3; k++) {
		struct ladderd_marker *m = NULL;
		size_t nm = 0;

		if (ladderd_spool_list(c->spool, dirs[k], &m, &nm) < 0)
			continue;
		for (size_t i = 0; i < nm; i++)
			op_add(&v, &n, c, m[i].task_id, names[k]);
		free(m);
	}
	if ((d = opendir(c->status)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			cJSON *st;
			const char *s;
			int known = 0;

			if (!ladderd_ctx_valid_name(de->d_name) ||
			    de->d_name[0] == '_')
				continue;
			for (size_t i = 0; i < n; i++)
				known |= strcmp(v[i].id, de->d_name) == 0;
			if (known || (st = op_load_status(c, de->d_name)) ==
				NULL)
				continue;
			s = ladderd_ctx_str(st, "state", "");
			if (strcmp(s, "complete") == 0 ||
			    strcmp(s, "failed") == 0)
				op_add(&done, &nd, c, de->d_name, s);
			cJSON_Delete(st);
		}
		closedir(d);
	}
	if (nd > 1)
		qsort(done, nd, sizeof(*done), op_newest_first);
	for (size_t i = 0; i < nd; i++) {
		struct op_task *nv;

		if (i >= OP_RECENT || (nv = realloc(v, (n + 1) * sizeof(*v))) ==
			NULL) {
			cJSON_Delete(done[i].status);
			continue;
		}
		v = nv;
		v[n++] = done[i];
	}
	free(done);
	*ret = v;
	*ret_n = n;
}

static void
op_free(struct op_task *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(v[i].status);
	free(v);
}

/* One line's detail: the stage and rungs, the error, when it retries. */
static void
op_detail(const struct op_task *t, char *buf, size_t size)
{
	const cJSON *r;
	size_t len;

	buf[0] = '\0';
	if (strcmp(t->state, "failed") == 0) {
		snprintf(buf, size, "%s", ladderd_ctx_str(t->status,
					      "error.message", ""));
		return;
	}
	if (strcmp(t->state, "deferred") == 0) {
		snprintf(buf, size, "retry at %s: %s",
		    ladderd_ctx_str(t->status, "retry_at", "?"),
		    ladderd_ctx_str(t->status, "error.message", ""));
		return;
	}
	if (strcmp(t->state, "running") != 0)
		return;
	snprintf(buf, size, "%s", ladderd_ctx_str(t->status, "state", ""));
	cJSON_ArrayForEach(r, ladderd_ctx_get(t->status, "rungs")) {
		len = strlen(buf);
		if (r->string[0] == '_' || len + 32 >= size)
			continue; /* internal units are no rung of the user's */
		snprintf(buf + len, size - len, " %s %.0f%%", r->string,
		    ladderd_ctx_num(r, "progress", 0) * 100);
	}
}

static cJSON *
op_task_json(const struct op_task *t)
{
	cJSON *o = cJSON_CreateObject();
	const cJSON *p = ladderd_ctx_get(t->status, "progress");
	char detail[512];

	if (o == NULL)
		return NULL;
	op_detail(t, detail, sizeof(detail));
	cJSON_AddStringToObject(o, "task_id", t->id);
	cJSON_AddStringToObject(o, "state", t->state);
	cJSON_AddStringToObject(o, "stage",
	    ladderd_ctx_str(t->status, "state", ""));
	if (cJSON_IsNumber(p))
		cJSON_AddNumberToObject(o, "progress", p->valuedouble);
	else
		cJSON_AddNullToObject(o, "progress");
	cJSON_AddStringToObject(o, "time", t->time);
	cJSON_AddStringToObject(o, "detail", detail);
	if (ladderd_ctx_get(t->status, "error") &&
	    cJSON_IsObject(ladderd_ctx_get(t->status, "error")))
		cJSON_AddItemToObject(o, "error",
		    cJSON_Duplicate(ladderd_ctx_get(t->status, "error"), 1));
	else
		cJSON_AddNullToObject(o, "error");
	return o;
}

static int
op_list(const struct ladderd_conf *c, int json)
{
	struct op_task *v = NULL;
	size_t n = 0;
	long pid = op_daemon_pid(c);

	op_collect(c, &v, &n);
	if (json) {
		cJSON *o = cJSON_CreateObject(), *d, *arr;
		char *text;

		if (o == NULL)
			return 1;
		d = cJSON_AddObjectToObject(o, "daemon");
		cJSON_AddBoolToObject(d, "running", pid > 0);
		if (pid > 0)
			cJSON_AddNumberToObject(d, "pid", (double)pid);
		arr = cJSON_AddArrayToObject(o, "tasks");
		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, op_task_json(&v[i]));
		if ((text = cJSON_Print(o)) != NULL)
			printf("%s\n", text);
		cJSON_free(text);
		cJSON_Delete(o);
	} else {
		if (pid > 0)
			printf("daemon running (pid %ld), spool '%s'\n", pid,
			    c->spool);
		else
			printf("daemon not running, spool '%s'\n", c->spool);
		printf("%-24s %-9s %5s  %-24s %s\n", "TASK", "STATE", "DONE",
		    "UPDATED", "DETAIL");
		for (size_t i = 0; i < n; i++) {
			const cJSON *p = ladderd_ctx_get(v[i].status,
			    "progress");
			char pct[8] = "-", detail[512];

			if (cJSON_IsNumber(p))
				snprintf(pct, sizeof(pct), "%.0f%%",
				    p->valuedouble * 100);
			op_detail(&v[i], detail, sizeof(detail));
			printf("%-24s %-9s %5s  %-24s %s\n", v[i].id,
			    v[i].state, pct, v[i].time[0] ? v[i].time : "-",
			    detail);
		}
	}
	op_free(v, n);
	return 0;
}

/* The last `max` events of a task (events.ndjson), oldest first. */
static cJSON *
op_events(const struct ladderd_conf *c, const char *id, int max)
{
	char p[PATH_MAX], *text = NULL, *line, *save = NULL;
	cJSON *all = cJSON_CreateArray(), *out = cJSON_CreateArray();
	int n;

	if (all == NULL || out == NULL ||
	    ladderd_status_path(c->status, id, LADDERD_STATUS_EVENTS, p,
		sizeof(p)) < 0 ||
	    ladderd_fsutil_read(p, 64u << 20, &text, NULL) < 0)
		goto out;
	for (line = text; line && *line; line = save) {
		cJSON *ev;

		if ((save = strchr(line, '\n')) != NULL)
			*save++ = '\0';
		if ((ev = cJSON_Parse(line)) != NULL)
			cJSON_AddItemToArray(all, ev);
	}
	n = cJSON_GetArraySize(all);
	for (int i = n > max ? n - max : 0; i < n; i++)
		cJSON_AddItemToArray(out,
		    cJSON_Duplicate(cJSON_GetArrayItem(all, i), 1));
out:
	free(text);
	cJSON_Delete(all);
	return out;
}

/* `status ID`: its state, rungs and last events. 0, or 1 when unknown. */
static int
op_show(const struct ladderd_conf *c, const char *id, int json,
    cJSON *json_out)
{
	struct op_task *v = NULL;
	size_t n = 0;
	const struct op_task *t = NULL;
	struct op_task one = { 0 };
	cJSON *events, *o;
	const cJSON *r, *ev;
	int rc = 0;

	op_collect(c, &v, &n);
	for (size_t i = 0; i < n && t == NULL; i++)
		if (strcmp(v[i].id, id) == 0)
			t = &v[i];
	if (t == NULL && ladderd_ctx_valid_name(id) &&
	    (one.status = op_load_status(c, id)) != NULL) {
		snprintf(one.id, sizeof(one.id), "%s", id);
		snprintf(one.state, sizeof(one.state), "%s",
		    ladderd_ctx_str(one.status, "state", "?"));
		snprintf(one.time, sizeof(one.time), "%s",
		    ladderd_ctx_str(one.status, "time", ""));
		t = &one;
	}
	if (t == NULL) {
		fprintf(stderr, "ladderd: no task '%s'\n", id);
		rc = 1;
		goto out;
	}
	events = op_events(c, id, OP_EVENTS);
	if (json) {
		if ((o = op_task_json(t)) != NULL) {
			cJSON *rungs = cJSON_AddArrayToObject(o, "rungs");

			cJSON_ArrayForEach(r, ladderd_ctx_get(t->status,
						  "rungs")) {
				cJSON *x;

				if (r->string[0] == '_' ||
				    (x = cJSON_Duplicate(r, 1)) == NULL)
					continue;
				cJSON_AddStringToObject(x, "name", r->string);
				cJSON_AddItemToArray(rungs, x);
			}
			cJSON_AddItemToObject(o, "events", events);
			events = NULL;
			cJSON_AddItemToArray(json_out, o);
		}
	} else {
		char detail[512];

		op_detail(t, detail, sizeof(detail));
		printf("task %s: %s%s%s\n", t->id, t->state,
		    detail[0] ? ", " : "", detail);
		cJSON_ArrayForEach(r, ladderd_ctx_get(t->status, "rungs")) {
			if (r->string[0] == '_')
				continue;
			printf("  rung %-10s %-12s %4.0f%%\n", r->string,
			    ladderd_ctx_str(r, "state", "?"),
			    ladderd_ctx_num(r, "progress", 0) * 100);
		}
		printf("  last events:\n");
		cJSON_ArrayForEach(ev, events) {
			const char *q = ladderd_ctx_str(ev, "quality", NULL);

			printf("    %4.0f %s %-12s%s%s%s%s\n",
			    ladderd_ctx_num(ev, "seq", 0),
			    ladderd_ctx_str(ev, "time", ""),
			    ladderd_ctx_str(ev, "state", ""), q ? " " : "",
			    q ? q : "",
			    ladderd_ctx_get(ev, "error") &&
				    cJSON_IsObject(ladderd_ctx_get(ev, "error")) ?
				": " :
				"",
			    ladderd_ctx_str(ev, "error.message", ""));
		}
	}
	cJSON_Delete(events);
out:
	cJSON_Delete(one.status);
	op_free(v, n);
	return rc;
}

static void
op_usage(const char *cmd)
{
	if (strcmp(cmd, "status") == 0)
		fprintf(stderr, "usage: ladderd status [-c FILE] [ID...] "
				"[--json]\n");
	else
		fprintf(stderr, "usage: ladderd %s [-c FILE] ID\n", cmd);
}

int
ladderd_operator_status(int argc, char **argv)
{
	struct ladderd_cli o;
	int idx, rc = 0;
	struct ladderd_conf *c;
	cJSON *arr = NULL;

	if ((idx = ladderd_cli_parse(argc, argv, LADDERD_CLI_JSON, &o)) < 0) {
		op_usage("status");
		return 2;
	}
	if ((c = ladderd_cli_conf(o.conf_file)) == NULL)
		return 1;
	if (idx == argc) {
		rc = op_list(c, o.json);
		ladderd_conf_free(c);
		return rc;
	}
	arr = cJSON_CreateArray();
	for (int i = idx; i < argc; i++)
		rc |= op_show(c, argv[i], o.json, arr);
	if (o.json) {
		char *text = cJSON_Print(arr);

		if (text)
			printf("%s\n", text);
		cJSON_free(text);
	}
	cJSON_Delete(arr);
	ladderd_conf_free(c);
	return rc;
}

struct state_wait {
	const struct ladderd_conf *c;
	const char *id, *state;
};

static int
op_check_state(void *arg)
{
	struct state_wait *w = arg;
	cJSON *st = op_load_status(w->c, w->id);
	int is = strcmp(ladderd_ctx_str(st, "state", ""), w->state) == 0;

	cJSON_Delete(st);
	return is ? 0 : -EAGAIN;
}

/*
 * Wait (inotify on status/<id>/, bounded) until the task's status says
 * `state`: a cancelled running task fails once its job has stopped.
 */
static int
op_wait_state(const struct ladderd_conf *c, const char *id, const char *state,
    int timeout_ms)
{
	struct state_wait w = { c, id, state };
	char dir[PATH_MAX];

	if (ladderd_status_path(c->status, id, LADDERD_STATUS_DIR, dir,
		sizeof(dir)) < 0)
		return -EINVAL;
	return ladderd_request_wait_folder(dir, timeout_ms, op_check_state,
	    &w);
}

/* `ladderd cancel ID`, `ladderd retry ID`: a request to the daemon. */
int
ladderd_operator_request(const char *verb, int argc, char **argv)
{
	struct ladderd_cli o;
	const char *id;
	struct ladderd_conf *c = NULL;
	char name[80];
	cJSON *reply = NULL;
	int idx, rc, code = 1;

	if ((idx = ladderd_cli_parse(argc, argv, 0, &o)) < 0 ||
	    argc - idx != 1) {
		op_usage(verb);
		return 2;
	}
	id = argv[idx];
	if (!ladderd_ctx_valid_name(id)) {
		fprintf(stderr, "ladderd: invalid task id '%s'\n", id);
		return 2;
	}
	if ((c = ladderd_cli_conf(o.conf_file)) == NULL)
		return 1;
	if ((rc = ladderd_request_submit(c->spool, verb, id, name,
		 sizeof(name))) < 0) {
		fprintf(stderr, "ladderd: cannot write a request into "
				"'%s/requests': %s%s\n", c->spool,
		    strerror(-rc),
		    rc == -EACCES ? " (run as the daemon's user or root)" : "");
		goto out;
	}
	if (op_daemon_pid(c) == 0) {
		printf("the daemon is not running: the request waits in "
		       "'%s/requests/%s' and is carried out when it starts\n",
		    c->spool, name);
		code = LADDERD_EXIT_TEMPFAIL;
		goto out;
	}
	if ((rc = ladderd_request_wait(c->spool, name, OP_REPLY_MS, &reply)) <
	    0) {
		int taken = ladderd_request_withdraw(c->spool, name) < 0;

		fprintf(stderr, "ladderd: no reply from the daemon within %d s"
				"%s\n", OP_REPLY_MS / 1000,
		    taken ? " (it took the request: see `ladderd status`)" :
			    "; request withdrawn");
		code = LADDERD_EXIT_TEMPFAIL;
		goto out;
	}
	printf("%s\n", ladderd_ctx_str(reply, "message", ""));
	code = ladderd_ctx_bool(reply, "ok", 0) ? LADDERD_EXIT_OK :
						    LADDERD_EXIT_FAIL;
	/* A running task is failed by the daemon once its job stopped. */
	if (code == 0 && strcmp(verb, "cancel") == 0 &&
	    op_wait_state(c, id, "failed", OP_REPLY_MS) < 0) {
		fprintf(stderr, "ladderd: task '%s' has not stopped yet\n", id);
		code = LADDERD_EXIT_TEMPFAIL;
	}
out:
	cJSON_Delete(reply);
	ladderd_conf_free(c);
	return code;
}
