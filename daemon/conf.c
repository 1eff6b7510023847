/*
 * conf.c - parses the libconfig file into struct ladderd_conf.
 *
 * Every key of the daemon is described once in the schema tables below,
 * with its type, default and range: the tables are the documentation's
 * source of truth (etc/ladderd.conf lists the same keys and defaults, a
 * test checks it). The groups a stage reads (a profile's video and audio,
 * the top-level download) are the stage's: it declares them (struct
 * ladderd_setting, stage.h) and ladderd_conf_check_settings() checks them
 * against those declarations in a second step, once the stages are known;
 * until then they are kept as written. Unknown keys, wrong types and
 * out-of-range values are refused with "FILE:LINE: reason". Relative
 * folder paths are resolved against the directory of the config file. A
 * missing setting takes its default, so an empty file (or no file) gives a
 * working configuration with the built-in "default" profile and workflow.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <libconfig.h>

#include "conf.h"
#include "ctx.h"
#include "exe.h"
#include "fsutil.h"
#include "netpolicy.h"

const char *const ladderd_phase_names[LADDERD_PHASE__COUNT] = {
	"pre", "rendition", "post"
};

const char *const ladderd_conf_type_names[LADDERD_SETTING_NETWORKS + 1] = {
	[LADDERD_SETTING_INT] = "int",
	[LADDERD_SETTING_FLOAT] = "float",
	[LADDERD_SETTING_BOOL] = "bool",
	[LADDERD_SETTING_STRING] = "string",
	[LADDERD_SETTING_STRINGS] = "strings",
	[LADDERD_SETTING_NETWORKS] = "networks",
};

/* The parsed file, kept for ladderd_conf_check_settings()'s FILE:LINE. */
struct ladderd_conf_source {
	config_t cfg;
	char *name; /* the file, or "<string>" */
};

enum key_type {
	K_INT,
	K_INT64,
	K_FLOAT,
	K_BOOL,
	K_STRING,
	K_STRINGS, /* list/array of strings */
	K_CIDRS,   /* list/array of CIDR strings (netpolicy) */
	K_GROUP,
	K_RUNGS,   /* list of rung groups */
};

struct key {
	const char *name;
	enum key_type type;
	const char *dflt;	   /* default as text ("" = none) */
	double min, max;	   /* numbers */
	const char *choices;	   /* strings: "a|b|c"; numbers: also allowed */
	const struct key *sub;	   /* groups and rungs */
	int required;
};

static const struct key rung_keys[] = {
	{ "name", K_STRING, NULL, 0, 0, NULL, NULL, 1 },
	{ "height", K_INT, NULL, 16, 4320, NULL, NULL, 1 },
	{ "bitrate", K_INT, NULL, 16, 200000, NULL, NULL, 1 },
	/* Absent: the profile's video.codec. */
	{ "codec", K_STRING, NULL, 0, 0, "libx264|libx265|libsvtav1", NULL,
	    0 },
	{ NULL, 0, NULL, 0, 0, NULL, NULL, 0 }
};

/* "workflow" inside a profile is handled apart (stage lists). */
static const struct key profile_keys[] = {
	{ "segment_duration", K_INT, "4", 1, 60, NULL, NULL, 0 },
	{ "segment_type", K_STRING, "fmp4", 0, 0, "fmp4|mpegts", NULL, 0 },
	{ "dash", K_BOOL, "true", 0, 0, NULL, NULL, 0 },
	{ "allow_upscale", K_BOOL, "false", 0, 0, NULL, NULL, 0 },
	{ "partial_ladder", K_BOOL, "false", 0, 0, NULL, NULL, 0 },
	{ "shared_decode", K_BOOL, "true", 0, 0, NULL, NULL, 0 },
	/* Chunked encoding (README, "Chunked encoding"): seconds per
	 * chunk, 0 = off; only sources longer than chunk_min_source seconds
	 * are cut. */
	{ "chunk_duration", K_INT, "0", 0, 86400, NULL, NULL, 0 },
	{ "chunk_min_source", K_INT, "0", 0, 604800, NULL, NULL, 0 },
	/* Segments a chunk's encoder starts early so that its rate control
	 * is warm at the chunk's start (those frames are encoded twice). */
	{ "chunk_preroll_segments", K_INT, "1", 0, 10, NULL, NULL, 0 },
	/* Picture limits the probe enforces (issue 9): 8K DCI pixels. */
	{ "max_width", K_INT, "8192", 16, 65536, NULL, NULL, 0 },
	{ "max_height", K_INT, "8192", 16, 65536, NULL, NULL, 0 },
	{ "max_pixels", K_INT64, "35389440", 256, 4294967296.0, NULL, NULL,
	    0 },
	{ "max_sar", K_FLOAT, "4", 1, 100, NULL, NULL, 0 },
	/* EXT-X-I-FRAME-STREAM-INF per video rung (stage iframes). */
	{ "iframe_playlists", K_BOOL, "true", 0, 0, NULL, NULL, 0 },
	/* Text subtitle tracks as WebVTT renditions (stage subtitles). */
	{ "subtitles", K_BOOL, "true", 0, 0, NULL, NULL, 0 },
	/* Absent: the top-level runner. */
	{ "runner", K_STRING, NULL, 0, 0, "local|slurm", NULL, 0 },
	{ "ladder", K_RUNGS, NULL, 0, 0, NULL, rung_keys, 0 },
	{ NULL, 0, NULL, 0, 0, NULL, NULL, 0 }
};

/* notify.amqp (amqp.h); an empty url: no AMQP transport. */
static const struct key amqp_keys[] = {
	{ "url", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "exchange", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "routing_key", K_STRING, "transcode-result", 0, 0, NULL, NULL, 0 },
	{ NULL, 0, NULL, 0, 0, NULL, NULL, 0 }
};

static const struct key notify_keys[] = {
	{ "webhook", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "secret", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "allow_manifest_webhook", K_BOOL, "false", 0, 0, NULL, NULL, 0 },
	{ "manifest_webhook_hosts", K_STRINGS, "", 0, 0, NULL, NULL, 0 },
	{ "manifest_webhook_secret", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "allow_networks", K_CIDRS, "", 0, 0, NULL, NULL, 0 },
	{ "timeout", K_INT, "10", 1, 600, NULL, NULL, 0 },
	{ "max_age", K_INT, "86400", 1, 2592000, NULL, NULL, 0 },
	{ "max_per_host", K_INT, "2", 1, 64, NULL, NULL, 0 },
	{ "amqp", K_GROUP, NULL, 0, 0, NULL, amqp_keys, 0 },
	{ NULL, 0, NULL, 0, 0, NULL, NULL, 0 }
};

/* Where units run with runner = "slurm" (README "Running rungs on a cluster"). */
static const struct key slurm_keys[] = {
	{ "srun", K_STRING, "srun", 0, 0, NULL, NULL, 0 },
	{ "partition", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "account", K_STRING, "", 0, 0, NULL, NULL, 0 },
	/* Minutes; 0: rung_timeout rounded up. */
	{ "time_limit", K_INT, "0", 0, 525600, NULL, NULL, 0 },
	/* 0: as the local runner shares this host's CPUs. */
	{ "cpus_per_unit", K_INT, "0", 0, 256, NULL, NULL, 0 },
	{ "mem_per_unit", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "max_units", K_INT, "64", 1, 4096, NULL, NULL, 0 },
	{ "extra_args", K_STRINGS, "", 0, 0, NULL, NULL, 0 },
	{ NULL, 0, NULL, 0, 0, NULL, NULL, 0 }
};

/* Top-level scalars; "watch", "profiles", "workflow" are handled apart. */
static const struct key top_keys[] = {
	{ "spool", K_STRING, "/var/spool/ladderd", 0, 0, NULL, NULL, 0 },
	{ "publish", K_STRING, "/var/lib/ladderd/publish", 0, 0, NULL, NULL,
	    0 },
	{ "status", K_STRING, "/var/lib/ladderd/status", 0, 0, NULL, NULL, 0 },
	{ "failed", K_STRING, "/var/lib/ladderd/failed", 0, 0, NULL, NULL, 0 },
	{ "archive", K_STRING, "/var/lib/ladderd/archive", 0, 0, NULL, NULL,
	    0 },
	{ "keep_source", K_STRING, "delete", 0, 0, "delete|archive", NULL, 0 },
	{ "stage_dir", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "max_jobs", K_INT, "1", 1, 64, NULL, NULL, 0 },
	{ "max_downloads", K_INT, "2", 1, 64, NULL, NULL, 0 },
	{ "max_retries", K_INT, "8", 1, 1000, NULL, NULL, 0 },
	{ "retry_delay", K_INT, "30", 1, 3600, NULL, NULL, 0 },
	{ "max_metadata", K_INT, "4096", 0, 65536, NULL, NULL, 0 },
	{ "max_rungs", K_INT, "0", 0, 256, NULL, NULL, 0 },
	{ "rung_retries", K_INT, "1", 0, 10, NULL, NULL, 0 },
	{ "rung_timeout", K_INT, "3600", 1, 604800, NULL, NULL, 0 },
	/* 0: the rungs that run at once share this host's CPUs. */
	{ "rung_threads", K_INT, "0", 0, 256, NULL, NULL, 0 },
	{ "settle_time", K_INT, "0", 0, 3600, NULL, NULL, 0 },
	{ "shutdown_timeout", K_INT, "30", 1, 3600, NULL, NULL, 0 },
	{ "umask", K_STRING, "027", 0, 0, NULL, NULL, 0 },
	{ "user", K_STRING, "", 0, 0, NULL, NULL, 0 },
	{ "runner", K_STRING, "local", 0, 0, "local|slurm", NULL, 0 },
	{ "slurm", K_GROUP, NULL, 0, 0, NULL, slurm_keys, 0 },
	{ "notify", K_GROUP, NULL, 0, 0, NULL, notify_keys, 0 },
	{ NULL, 0, NULL, 0, 0, NULL, NULL, 0 }
};

static const char *const default_ladder[][3] = {
	{ "1080p", "1080", "5000" },
	{ "720p", "720", "2800" },
	{ "480p", "480", "1200" },
	{ "360p", "360", "700" },
};

static const char *const default_workflow[LADDERD_PHASE__COUNT][8] = {
	{ "download", "probe", "hls_header", NULL },
	{ "target_size", "transcode", "chunk_hls", "hls_info", "iframes",
	    "notify", NULL },
	{ "thumbnails", "subtitles", "hls_footer", "chunk_dash", "verify",
	    "publish", NULL },
};

struct parse {
	const char *file;
	const char *dir; /* for relative paths */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int
conf_error(struct parse *p, const config_setting_t *s, const char *fmt, ...)
{
	char msg[1024];
	const char *file = s ? config_setting_source_file(s) : NULL;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s:%d: %s", file ? file : p->file,
	    s ? (int)config_setting_source_line(s) : 0, msg);
	return -EINVAL;
}

static const struct key *
find_key(const struct key *keys, const char *name)
{
	for (; keys->name; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

static int
choice_ok(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *c = choices;

	while (c && *c) {
		const char *bar = strchr(c, '|');
		size_t len = bar ? (size_t)(bar - c) : strlen(c);

		if (len == n && strncmp(c, v, n) == 0)
			return 1;
		c = bar ? bar + 1 : NULL;
	}
	return 0;
}

/* Whether `v` is one of the numbers of "a|b|c" (NULL: none). */
static int
number_choice_ok(const char *choices, double v)
{
	const char *c = choices;

	while (c && *c) {
		char *end;

		if (strtod(c, &end) == v && (*end == '|' || *end == '\0'))
			return 1;
		c = strchr(c, '|');
		c = c ? c + 1 : NULL;
	}
	return 0;
}

static cJSON *default_value(const struct key *k);

/* The default of a group: every key with its default. */
static cJSON *
default_group(const struct key *keys)
{
	cJSON *g = cJSON_CreateObject();

	for (; g && keys->name; keys++) {
		cJSON *v = default_value(keys);

		if (v)
			cJSON_AddItemToObject(g, keys->name, v);
	}
	return g;
}

static cJSON *
default_value(const struct key *k)
{
	switch (k->type) {
	case K_INT:
	case K_INT64:
	case K_FLOAT:
		return k->dflt ? cJSON_CreateNumber(strtod(k->dflt, NULL)) :
				 NULL;
	case K_BOOL:
		return k->dflt ? cJSON_CreateBool(strcmp(k->dflt, "true") == 0) :
				 NULL;
	case K_STRING:
		return k->dflt ? cJSON_CreateString(k->dflt) : NULL;
	case K_STRINGS:
	case K_CIDRS: {
		cJSON *a = cJSON_CreateArray();
		char buf[256], *save = NULL, *tok;

		snprintf(buf, sizeof(buf), "%s", k->dflt ? k->dflt : "");
		for (tok = strtok_r(buf, ",", &save); a && tok;
		     tok = strtok_r(NULL, ",", &save))
			cJSON_AddItemToArray(a, cJSON_CreateString(tok));
		return a;
	}
	case K_GROUP:
		return default_group(k->sub);
	case K_RUNGS: {
		cJSON *a = cJSON_CreateArray();

		for (size_t i = 0; a && i < sizeof(default_ladder) /
			 sizeof(default_ladder[0]); i++) {
			cJSON *r = cJSON_CreateObject();

			cJSON_AddStringToObject(r, "name", default_ladder[i][0]);
			cJSON_AddNumberToObject(r, "height",
			    atoi(default_ladder[i][1]));
			cJSON_AddNumberToObject(r, "bitrate",
			    atoi(default_ladder[i][2]));
			cJSON_AddItemToArray(a, r);
		}
		return a;
	}
	}
	return NULL;
}

static int convert_group(struct parse *p, const config_setting_t *g,
    const struct key *keys, const char *const *extra, cJSON *deferred,
    cJSON **ret);
static cJSON *setting_to_json(const config_setting_t *s);

static int
convert_number(struct parse *p, const config_setting_t *s,
    const struct key *k, cJSON **ret)
{
	double v;
	int t = config_setting_type(s);

	if (t == CONFIG_TYPE_INT)
		v = config_setting_get_int(s);
	else if (t == CONFIG_TYPE_INT64)
		v = (double)config_setting_get_int64(s);
	else if (t == CONFIG_TYPE_FLOAT && k->type == K_FLOAT)
		v = config_setting_get_float(s);
	else
		return conf_error(p, s, "'%s' must be %s", k->name,
		    k->type == K_FLOAT ? "a number" : "an integer");
	if ((v < k->min || v > k->max) && !number_choice_ok(k->choices, v))
		return conf_error(p, s, "'%s' is %g, must be %s%s%g..%g",
		    k->name, v, k->choices ? k->choices : "",
		    k->choices ? " or in " : "in ", k->min, k->max);
	*ret = cJSON_CreateNumber(v);
	return 0;
}

static int
convert_rungs(struct parse *p, const config_setting_t *s, const struct key *k,
    cJSON **ret)
{
	cJSON *a = NULL;
	int n, rc;

	if (!config_setting_is_list(s) && !config_setting_is_array(s))
		return conf_error(p, s, "'%s' must be a list of "
		    "{ name; height; bitrate; } groups", k->name);
	if ((n = config_setting_length(s)) == 0)
		return conf_error(p, s, "'%s' is empty: at least one rung",
		    k->name);
	a = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		cJSON *r = NULL;
		const char *name;

		if (!config_setting_is_group(e)) {
			cJSON_Delete(a);
			return conf_error(p, e, "a rung must be a group "
			    "{ name; height; bitrate; }");
		}
		if ((rc = convert_group(p, e, k->sub, NULL, NULL, &r)) < 0) {
			cJSON_Delete(a);
			return rc;
		}
		/* `name` lives in r: quote it before r is freed. */
		name = ladderd_ctx_str(r, "name", "");
		rc = 0;
		if (!ladderd_ctx_valid_name(name) ||
		    strcmp(name, "audio") == 0 ||
		    strncmp(name, "audio-", 6) == 0 ||
		    strncmp(name, "sub-", 4) == 0)
			rc = conf_error(p, e, "rung name '%s' is not 1..64 of "
			    "[A-Za-z0-9._-] (and not 'audio', 'audio-*' or "
			    "'sub-*')", name);
		for (int j = 0; rc == 0 && j < cJSON_GetArraySize(a); j++)
			if (strcmp(ladderd_ctx_str(cJSON_GetArrayItem(a, j),
				       "name", ""), name) == 0)
				rc = conf_error(p, e, "rung name '%s' used "
				    "twice", name);
		if (rc < 0) {
			cJSON_Delete(r);
			cJSON_Delete(a);
			return rc;
		}
		cJSON_AddItemToArray(a, r);
	}
	*ret = a;
	return 0;
}

/* Convert one setting according to its key description. */
static int
convert_value(struct parse *p, const config_setting_t *s, const struct key *k,
    cJSON **ret)
{
	switch (k->type) {
	case K_INT:
	case K_INT64:
	case K_FLOAT:
		return convert_number(p, s, k, ret);
	case K_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return conf_error(p, s, "'%s' must be true or false",
			    k->name);
		*ret = cJSON_CreateBool(config_setting_get_bool(s));
		return 0;
	case K_STRING: {
		const char *v = config_setting_get_string(s);

		if (v == NULL)
			return conf_error(p, s, "'%s' must be a string",
			    k->name);
		if (k->choices && !choice_ok(k->choices, v))
			return conf_error(p, s, "'%s' is \"%s\", must be one "
			    "of %s", k->name, v, k->choices);
		*ret = cJSON_CreateString(v);
		return 0;
	}
	case K_STRINGS:
	case K_CIDRS: {
		struct ladderd_netpolicy scratch = { 0 };
		cJSON *a;
		int n;

		if (!config_setting_is_array(s) && !config_setting_is_list(s))
			return conf_error(p, s, "'%s' must be a list of "
			    "strings", k->name);
		a = cJSON_CreateArray();
		n = config_setting_length(s);
		for (int i = 0; i < n; i++) {
			const char *v = config_setting_get_string_elem(s, i);

			if (v == NULL) {
				cJSON_Delete(a);
				return conf_error(p, s, "'%s' must be a list of "
				    "strings", k->name);
			}
			if (k->type == K_CIDRS &&
			    ladderd_netpolicy_allow(&scratch, v) < 0) {
				cJSON_Delete(a);
				return conf_error(p, s, "'%s': \"%s\" is not a "
				    "network such as \"10.0.0.0/8\" or "
				    "\"fd00::/8\" (host bits clear, at most %d)",
				    k->name, v, LADDERD_NETPOLICY_MAX);
			}
			cJSON_AddItemToArray(a, cJSON_CreateString(v));
		}
		*ret = a;
		return 0;
	}
	case K_GROUP:
		if (!config_setting_is_group(s))
			return conf_error(p, s, "'%s' must be a group { ... }",
			    k->name);
		return convert_group(p, s, k->sub, NULL, NULL, ret);
	case K_RUNGS:
		return convert_rungs(p, s, k, ret);
	}
	return conf_error(p, s, "internal: unknown key type");
}

/*
 * Convert group `g` (may be NULL: all defaults) to a cJSON object
 * following `keys`; names in `extra` are skipped (the caller handles
 * them); an unknown group goes into `deferred` as written when it is not
 * NULL (a stage's: ladderd_conf_check_settings() checks it); anything
 * else unknown is an error.
 */
static int
convert_group(struct parse *p, const config_setting_t *g,
    const struct key *keys, const char *const *extra, cJSON *deferred,
    cJSON **ret)
{
	cJSON *obj = cJSON_CreateObject();
	int n = g ? config_setting_length(g) : 0;
	int rc;

	if (obj == NULL)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		const struct key *k = name ? find_key(keys, name) : NULL;
		cJSON *v = NULL;
		int skip = 0;

		for (const char *const *e = extra; e && *e; e++)
			if (name && strcmp(*e, name) == 0)
				skip = 1;
		if (skip)
			continue;
		if (k == NULL && deferred != NULL && name != NULL &&
		    config_setting_is_group(s)) {
			cJSON_AddItemToObject(deferred, name,
			    setting_to_json(s));
			continue;
		}
		if (k == NULL) {
			cJSON_Delete(obj);
			return conf_error(p, s, "unknown setting '%s'",
			    name ? name : "?");
		}
		if ((rc = convert_value(p, s, k, &v)) < 0) {
			cJSON_Delete(obj);
			return rc;
		}
		cJSON_AddItemToObject(obj, k->name, v);
	}
	for (const struct key *k = keys; k->name; k++) {
		cJSON *v;

		if (cJSON_GetObjectItemCaseSensitive(obj, k->name))
			continue;
		if (k->required) {
			cJSON_Delete(obj);
			return conf_error(p, g, "missing required setting '%s'",
			    k->name);
		}
		if ((v = default_value(k)) != NULL)
			cJSON_AddItemToObject(obj, k->name, v);
	}
	*ret = obj;
	return 0;
}

/* Any libconfig setting as JSON, without a schema (stage arguments). */
static cJSON *
setting_to_json(const config_setting_t *s)
{
	cJSON *out = NULL;
	int n;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		return cJSON_CreateNumber(config_setting_get_int(s));
	case CONFIG_TYPE_INT64:
		return cJSON_CreateNumber((double)config_setting_get_int64(s));
	case CONFIG_TYPE_FLOAT:
		return cJSON_CreateNumber(config_setting_get_float(s));
	case CONFIG_TYPE_BOOL:
		return cJSON_CreateBool(config_setting_get_bool(s));
	case CONFIG_TYPE_STRING:
		return cJSON_CreateString(config_setting_get_string(s));
	case CONFIG_TYPE_GROUP:
		out = cJSON_CreateObject();
		n = config_setting_length(s);
		for (int i = 0; out && i < n; i++) {
			config_setting_t *e = config_setting_get_elem(s, i);

			cJSON_AddItemToObject(out, config_setting_name(e),
			    setting_to_json(e));
		}
		return out;
	default: /* list, array */
		out = cJSON_CreateArray();
		n = config_setting_length(s);
		for (int i = 0; out && i < n; i++)
			cJSON_AddItemToArray(out,
			    setting_to_json(config_setting_get_elem(s, i)));
		return out;
	}
}

static void
workflow_release(struct ladderd_workflow *wf)
{
	for (int ph = 0; ph < LADDERD_PHASE__COUNT; ph++) {
		for (size_t i = 0; i < wf->n[ph]; i++) {
			free(wf->stages[ph][i].name);
			cJSON_Delete(wf->stages[ph][i].args);
		}
		free(wf->stages[ph]);
		wf->stages[ph] = NULL;
		wf->n[ph] = 0;
	}
}

static int
workflow_add(struct ladderd_workflow *wf, int ph, const char *name,
    cJSON *args)
{
	struct ladderd_stage_ref *n = realloc(wf->stages[ph],
	    (wf->n[ph] + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	wf->stages[ph] = n;
	n[wf->n[ph]].name = strdup(name);
	n[wf->n[ph]].args = args ? args : cJSON_CreateObject();
	wf->n[ph]++;
	return n[wf->n[ph] - 1].name ? 0 : -ENOMEM;
}

static int
workflow_default(struct ladderd_workflow *wf)
{
	for (int ph = 0; ph < LADDERD_PHASE__COUNT; ph++)
		for (int i = 0; default_workflow[ph][i]; i++)
			if (workflow_add(wf, ph, default_workflow[ph][i],
				NULL) < 0)
				return -ENOMEM;
	return 0;
}

/*
 * workflow = { pre = ( "probe", { stage = "x"; args = { ... }; } ); ... };
 * A phase left out keeps the default list.
 */
static int
parse_workflow(struct parse *p, const config_setting_t *g,
    struct ladderd_workflow *wf)
{
	int n, rc;

	if (!config_setting_is_group(g))
		return conf_error(p, g, "'workflow' must be a group "
		    "{ pre = (...); rendition = (...); post = (...); }");
	n = config_setting_length(g);
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		int ph = -1;

		for (int j = 0; j < LADDERD_PHASE__COUNT; j++)
			if (name && strcmp(name, ladderd_phase_names[j]) == 0)
				ph = j;
		if (ph < 0)
			return conf_error(p, s, "unknown workflow phase '%s' "
			    "(pre, rendition, post)", name ? name : "?");
		if (!config_setting_is_list(s) && !config_setting_is_array(s))
			return conf_error(p, s, "workflow phase '%s' must be a "
			    "list of stage names or { stage; args; } groups",
			    name);
		/* The file's list replaces the default one. */
		for (size_t k = 0; k < wf->n[ph]; k++) {
			free(wf->stages[ph][k].name);
			cJSON_Delete(wf->stages[ph][k].args);
		}
		wf->n[ph] = 0;
		for (int k = 0; k < config_setting_length(s); k++) {
			config_setting_t *e = config_setting_get_elem(s, k);
			const char *stage = NULL;
			cJSON *args = NULL;

			if (config_setting_type(e) == CONFIG_TYPE_STRING)
				stage = config_setting_get_string(e);
			else if (config_setting_is_group(e)) {
				config_setting_t *a;

				for (int m = 0; m < config_setting_length(e);
				     m++) {
					const char *kn = config_setting_name(
					    config_setting_get_elem(e, m));

					if (strcmp(kn, "stage") != 0 &&
					    strcmp(kn, "args") != 0)
						return conf_error(p,
						    config_setting_get_elem(e,
							m),
						    "unknown setting '%s' in a "
						    "workflow entry (stage, "
						    "args)", kn);
				}
				if (!config_setting_lookup_string(e, "stage",
					&stage))
					return conf_error(p, e, "workflow entry "
					    "without 'stage = \"name\";'");
				a = config_setting_get_member(e, "args");
				if (a && !config_setting_is_group(a))
					return conf_error(p, a, "'args' must be "
					    "a group { key = value; ... }");
				if (a)
					args = setting_to_json(a);
			} else
				return conf_error(p, e, "a workflow entry is a "
				    "stage name or { stage; args; }");
			if (!ladderd_ctx_valid_name(stage)) {
				cJSON_Delete(args);
				return conf_error(p, e, "invalid stage name "
				    "'%s'", stage);
			}
			if ((rc = workflow_add(wf, ph, stage, args)) < 0)
				return rc;
		}
	}
	return 0;
}

/*
 * HEVC and AV1 go in fMP4 (CMAF) only: MPEG-TS segments would need codec
 * signalling players do not agree on. Refuses a profile with segment_type
 * "mpegts" whose video.codec or any rung's codec is not libx264.
 */
static int
profile_codecs_check(struct parse *p, const config_setting_t *s,
    const cJSON *settings)
{
	const char *codec;
	const cJSON *r;

	if (strcmp(ladderd_ctx_str(settings, "segment_type", "fmp4"),
		"mpegts") != 0)
		return 0;
	codec = ladderd_ctx_str(settings, "video.codec", "libx264");
	if (strcmp(codec, "libx264") != 0)
		return conf_error(p, s, "profile '%s': video.codec '%s' needs "
		    "segment_type \"fmp4\" (MPEG-TS carries H.264 only)",
		    config_setting_name(s), codec);
	cJSON_ArrayForEach(r, ladderd_ctx_get(settings, "ladder")) {
		codec = ladderd_ctx_str(r, "codec", "libx264");
		if (strcmp(codec, "libx264") != 0)
			return conf_error(p, s, "profile '%s': rung '%s' codec "
			    "'%s' needs segment_type \"fmp4\" (MPEG-TS "
			    "carries H.264 only)", config_setting_name(s),
			    ladderd_ctx_str(r, "name", "?"), codec);
	}
	return 0;
}

/*
 * A chunk is whole segments: chunk_duration is 0 or a whole multiple of
 * segment_duration, so chunk boundaries are segment boundaries.
 */
static int
profile_chunks_check(struct parse *p, const config_setting_t *s,
    const cJSON *settings)
{
	int chunk = (int)ladderd_ctx_num(settings, "chunk_duration", 0);
	int seg = (int)ladderd_ctx_num(settings, "segment_duration", 4);

	if (chunk != 0 && (seg <= 0 || chunk % seg != 0))
		return conf_error(p, config_setting_get_member(s,
				      "chunk_duration") ?
			config_setting_get_member(s, "chunk_duration") : s,
		    "profile '%s': chunk_duration %d is not a whole multiple "
		    "of segment_duration %d", config_setting_name(s), chunk,
		    seg);
	return 0;
}

/* Move every item of object `from` into object `to`. */
static void
move_items(cJSON *to, cJSON *from)
{
	cJSON *it;

	while (from != NULL && (it = from->child) != NULL) {
		cJSON_DetachItemViaPointer(from, it);
		cJSON_AddItemToObject(to, it->string, it);
	}
}

/*
 * One profile's own settings into pr->settings, the groups stages own as
 * written (ladderd_conf_check_settings checks them), and its workflow.
 */
static int
parse_profile(struct parse *p, const config_setting_t *s,
    struct ladderd_profile *pr)
{
	static const char *const extra[] = { "workflow", NULL };
	cJSON *raw = cJSON_CreateObject();
	config_setting_t *w;
	int rc;

	if (raw == NULL)
		return -ENOMEM;
	rc = convert_group(p, s, profile_keys, extra, raw, &pr->settings);
	if (rc == 0)
		move_items(pr->settings, raw);
	cJSON_Delete(raw);
	if (rc < 0 || (s && ((rc = profile_codecs_check(p, s,
				  pr->settings)) < 0 ||
			      (rc = profile_chunks_check(p, s,
				   pr->settings)) < 0)))
		return rc;
	if (s && (w = config_setting_get_member(s, "workflow")) != NULL) {
		if ((pr->workflow = calloc(1, sizeof(*pr->workflow))) == NULL)
			return -ENOMEM;
		if ((rc = workflow_default(pr->workflow)) < 0 ||
		    (rc = parse_workflow(p, w, pr->workflow)) < 0)
			return rc;
	}
	return 0;
}

static int
parse_profiles(struct parse *p, const config_setting_t *g,
    struct ladderd_conf *c)
{
	int n, rc;

	if (g && !config_setting_is_group(g))
		return conf_error(p, g, "'profiles' must be a group of named "
		    "profiles: profiles = { default = { ... }; };");
	n = g ? config_setting_length(g) : 0;
	c->profiles = calloc((size_t)n + 1, sizeof(*c->profiles));
	if (c->profiles == NULL)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(g, i);
		struct ladderd_profile *pr = &c->profiles[c->nprofiles];

		if (!config_setting_is_group(s))
			return conf_error(p, s, "profile '%s' must be a group",
			    config_setting_name(s));
		if ((pr->name = strdup(config_setting_name(s))) == NULL)
			return -ENOMEM;
		c->nprofiles++;
		if ((rc = parse_profile(p, s, pr)) < 0)
			return rc;
	}
	if (ladderd_conf_profile(c, "default") == NULL) {
		/* Always have a "default" profile: the built-in one. */
		struct ladderd_profile *pr = &c->profiles[c->nprofiles];

		if ((pr->name = strdup("default")) == NULL)
			return -ENOMEM;
		c->nprofiles++;
		if ((rc = parse_profile(p, NULL, pr)) < 0)
			return rc;
	}
	return 0;
}

static int
parse_watches(struct parse *p, const config_setting_t *l,
    struct ladderd_conf *c)
{
	static const struct key watch_keys[] = {
		{ "path", K_STRING, NULL, 0, 0, NULL, NULL, 1 },
		{ "profile", K_STRING, "default", 0, 0, NULL, NULL, 0 },
		{ NULL, 0, NULL, 0, 0, NULL, NULL, 0 }
	};
	int n, rc;

	if (l == NULL)
		return 0;
	if (!config_setting_is_list(l))
		return conf_error(p, l, "'watch' must be a list of groups: "
		    "watch = ( { path = \"...\"; profile = \"default\"; } );");
	n = config_setting_length(l);
	if ((c->watches = calloc((size_t)n + 1, sizeof(*c->watches))) == NULL)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(l, i);
		cJSON *w = NULL;
		const char *prof;
		char *path;

		if (!config_setting_is_group(e))
			return conf_error(p, e, "a watch entry must be a group "
			    "{ path; profile; }");
		if ((rc = convert_group(p, e, watch_keys, NULL, NULL, &w)) < 0)
			return rc;
		prof = ladderd_ctx_str(w, "profile", "default");
		if (ladderd_conf_profile(c, prof) == NULL) {
			rc = conf_error(p, e, "watch names unknown profile "
			    "'%s'", prof);
			cJSON_Delete(w);
			return rc;
		}
		path = ladderd_ctx_str(w, "path", "")[0] == '/' || !p->dir ?
		    strdup(ladderd_ctx_str(w, "path", "")) : NULL;
		if (path == NULL) {
			size_t len = strlen(p->dir) +
			    strlen(ladderd_ctx_str(w, "path", "")) + 2;

			if ((path = malloc(len)) != NULL)
				snprintf(path, len, "%s/%s", p->dir,
				    ladderd_ctx_str(w, "path", ""));
		}
		c->watches[c->nwatches].path = path;
		c->watches[c->nwatches].profile = strdup(prof);
		c->nwatches++;
		cJSON_Delete(w);
		if (path == NULL || c->watches[c->nwatches - 1].profile == NULL)
			return -ENOMEM;
	}
	return 0;
}

/* Resolve a folder setting against the config's directory. */
static char *
resolve(const struct parse *p, const char *v)
{
	char *out;
	size_t len;

	if (v[0] == '/' || p->dir == NULL || v[0] == '\0')
		return strdup(v);
	len = strlen(p->dir) + strlen(v) + 2;
	if ((out = malloc(len)) != NULL)
		snprintf(out, len, "%s/%s", p->dir, v);
	return out;
}

/*
 * umask = "027": one to four octal digits. The daemon and its workers run
 * with it, so what they write is not open to other users (issue 9).
 */
static int
parse_umask(struct parse *p, const config_setting_t *s, const char *v,
    mode_t *ret)
{
	char *end = NULL;
	unsigned long m;

	if (v[0] == '\0' || strlen(v) > 4 || strspn(v, "01234567") != strlen(v))
		return conf_error(p, s, "'umask' is \"%s\", must be octal digits "
		    "such as \"027\"", v);
	m = strtoul(v, &end, 8);
	if (m > 0777)
		return conf_error(p, s, "'umask' is \"%s\", must be at most "
		    "\"0777\"", v);
	*ret = (mode_t)m;
	return 0;
}

/*
 * The default stage path: the build tree's stages when this binary runs
 * from the build tree (so tests and the demo need no install), else the
 * installed $(pkglibdir)/stages.
 */
static char *
default_stage_path(void)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	char *slash;

	if (realpath(ladderd_exe_path(), exe) != NULL) {
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/stages/.libs", exe);
			if (access(path, F_OK) == 0)
				return strdup(path);
		}
	}
	return strdup(STAGEDIR);
}

/*
 * The stage path: the configured folders ("dir1:dir2", each resolved
 * against the config's folder), then the default one, so a plugin folder
 * adds stages (or overrides a built-in of the same name, being first)
 * without hiding the built-in ones. Caller frees; NULL when out of memory.
 */
static char *
stage_path(const struct parse *p, const char *configured)
{
	char *dflt = default_stage_path(), *list = strdup(configured);
	char *out = NULL, *save = NULL, *dir;
	size_t len = 0, size;

	if (dflt == NULL || list == NULL)
		goto out;
	size = strlen(dflt) + 1;
	for (const char *c = configured; *c; c++)
		size += *c == ':' ? (p->dir ? strlen(p->dir) : 0) + 2 : 1;
	size += (p->dir ? strlen(p->dir) : 0) + 2;
	if ((out = malloc(size)) == NULL)
		goto out;
	out[0] = '\0';
	for (dir = strtok_r(list, ":", &save); dir != NULL;
	     dir = strtok_r(NULL, ":", &save)) {
		char *abs = resolve(p, dir);

		if (abs == NULL) {
			free(out);
			out = NULL;
			goto out;
		}
		len += (size_t)snprintf(out + len, size - len, "%s%s",
		    len ? ":" : "", abs);
		free(abs);
	}
	/* The default once, even when the file names it too. */
	for (dir = out; dir != NULL; dir = strchr(dir, ':')) {
		size_t n = strlen(dflt);

		dir += *dir == ':';
		if (strncmp(dir, dflt, n) == 0 &&
		    (dir[n] == ':' || dir[n] == '\0'))
			goto out;
	}
	(void)snprintf(out + len, size - len, "%s%s", len ? ":" : "", dflt);
out:
	free(dflt);
	free(list);
	return out;
}

static int
conf_from_config(config_t *cfg, struct parse *p, struct ladderd_conf **ret)
{
	static const char *const extra[] = { "watch", "profiles", "workflow",
		NULL };
	struct ladderd_conf *c = calloc(1, sizeof(*c));
	config_setting_t *root = config_root_setting(cfg);
	config_setting_t *w;
	cJSON *top = NULL;
	int rc;

	if (c == NULL || (c->stage_groups = cJSON_CreateObject()) == NULL) {
		free(c);
		return -ENOMEM;
	}
	if ((rc = convert_group(p, root, top_keys, extra, c->stage_groups,
		 &top)) < 0)
		goto fail;
	rc = -ENOMEM;
	if ((c->spool = resolve(p, ladderd_ctx_str(top, "spool", ""))) ==
		NULL ||
	    (c->publish = resolve(p, ladderd_ctx_str(top, "publish", ""))) ==
		NULL ||
	    (c->status = resolve(p, ladderd_ctx_str(top, "status", ""))) ==
		NULL ||
	    (c->failed = resolve(p, ladderd_ctx_str(top, "failed", ""))) ==
		NULL ||
	    (c->archive = resolve(p, ladderd_ctx_str(top, "archive", ""))) ==
		NULL)
		goto fail;
	c->archive_sources = strcmp(ladderd_ctx_str(top, "keep_source", ""),
	    "archive") == 0;
	c->stage_path = stage_path(p, ladderd_ctx_str(top, "stage_dir", ""));
	if (c->stage_path == NULL)
		goto fail;
	c->max_jobs = (int)ladderd_ctx_num(top, "max_jobs", 1);
	c->max_downloads = (int)ladderd_ctx_num(top, "max_downloads", 2);
	c->max_retries = (int)ladderd_ctx_num(top, "max_retries", 8);
	c->retry_delay = (int)ladderd_ctx_num(top, "retry_delay", 30);
	c->max_metadata = (int)ladderd_ctx_num(top, "max_metadata", 4096);
	c->max_rungs = (int)ladderd_ctx_num(top, "max_rungs", 0);
	if (c->max_rungs == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		c->max_rungs = cpus > 0 ? (int)cpus : 1;
	}
	c->rung_retries = (int)ladderd_ctx_num(top, "rung_retries", 1);
	c->rung_timeout = (int)ladderd_ctx_num(top, "rung_timeout", 3600);
	c->rung_threads = (int)ladderd_ctx_num(top, "rung_threads", 0);
	c->settle_time = (int)ladderd_ctx_num(top, "settle_time", 0);
	c->shutdown_timeout = (int)ladderd_ctx_num(top, "shutdown_timeout", 30);
	if ((c->user = strdup(ladderd_ctx_str(top, "user", ""))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = parse_umask(p, config_setting_get_member(root, "umask"),
		 ladderd_ctx_str(top, "umask", "027"), &c->umask)) < 0)
		goto fail;
	c->notify = cJSON_DetachItemFromObject(top, "notify");
	c->slurm = cJSON_DetachItemFromObject(top, "slurm");
	if ((c->runner = strdup(ladderd_ctx_str(top, "runner", "local"))) ==
	    NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = workflow_default(&c->workflow)) < 0)
		goto fail;
	if ((w = config_setting_get_member(root, "workflow")) != NULL &&
	    (rc = parse_workflow(p, w, &c->workflow)) < 0)
		goto fail;
	if ((rc = parse_profiles(p, config_setting_get_member(root,
		 "profiles"), c)) < 0)
		goto fail;
	if ((rc = parse_watches(p, config_setting_get_member(root, "watch"),
		 c)) < 0)
		goto fail;
	if (c->workflow.n[LADDERD_PHASE_RENDITION] == 0) {
		rc = conf_error(p, w, "workflow has no rendition stages");
		goto fail;
	}
	cJSON_Delete(top);
	*ret = c;
	return 0;
fail:
	if (rc == -ENOMEM && p->err[0] == '\0')
		snprintf(p->err, p->errlen, "%s: out of memory", p->file);
	cJSON_Delete(top);
	ladderd_conf_free(c);
	return rc;
}

/* --- the groups stages own (ladderd_conf_check_settings) ------------- */

/* Whether the array of strings `list` holds `s`. */
static int
list_has(const cJSON *list, const char *s)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, list)
		if (strcmp(cJSON_GetStringValue(it), s) == 0)
			return 1;
	return 0;
}

/*
 * The declaration named `path` in `decls` (NULL if none); *ret_below tells
 * whether some declaration lies below it ("path.x"), making it a group.
 */
static const cJSON *
decl_find(const cJSON *decls, const char *path, int *ret_below)
{
	size_t n = strlen(path);
	const cJSON *d, *exact = NULL;

	*ret_below = 0;
	cJSON_ArrayForEach(d, decls) {
		const char *name = ladderd_ctx_str(d, "name", "");

		if (strcmp(name, path) == 0)
			exact = d;
		else if (strncmp(name, path, n) == 0 && name[n] == '.')
			*ret_below = 1;
	}
	return exact;
}

/* A declaration as a schema key (its name: the last component). */
static int
decl_key(const cJSON *d, struct key *k)
{
	static const enum key_type types[] = {
		[LADDERD_SETTING_INT] = K_INT,
		[LADDERD_SETTING_FLOAT] = K_FLOAT,
		[LADDERD_SETTING_BOOL] = K_BOOL,
		[LADDERD_SETTING_STRING] = K_STRING,
		[LADDERD_SETTING_STRINGS] = K_STRINGS,
		[LADDERD_SETTING_NETWORKS] = K_CIDRS,
	};
	const char *name = ladderd_ctx_str(d, "name", "");
	const char *type = ladderd_ctx_str(d, "type", "");

	*k = (struct key){ .name = strrchr(name, '.') ? strrchr(name, '.') + 1 :
						       name,
		.dflt = ladderd_ctx_str(d, "default", ""),
		.min = ladderd_ctx_num(d, "min", 0),
		.max = ladderd_ctx_num(d, "max", 0),
		.choices = ladderd_ctx_str(d, "choices", NULL) };
	for (size_t t = LADDERD_SETTING_INT; t <= LADDERD_SETTING_NETWORKS; t++)
		if (strcmp(type, ladderd_conf_type_names[t]) == 0) {
			k->type = types[t];
			return 0;
		}
	return -EINVAL;
}

static int check_group(struct parse *p, const config_setting_t *g,
    const char *prefix, const cJSON *decls, cJSON **ret);

/* "prefix.name" into buf; -ENAMETOOLONG when it does not fit. */
static int
join_path(char *buf, size_t size, const char *prefix, const char *name)
{
	int n = snprintf(buf, size, "%s.%s", prefix, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Setting `s` of the group at `prefix`, checked, into obj. */
static int
check_member(struct parse *p, const config_setting_t *s, const char *prefix,
    const cJSON *decls, cJSON *obj)
{
	const char *name = config_setting_name(s);
	const cJSON *d;
	struct key k;
	char path[256];
	cJSON *v = NULL;
	int below, rc;

	if (name == NULL || join_path(path, sizeof(path), prefix, name) < 0)
		return conf_error(p, s, "unknown setting '%s'",
		    name ? name : "?");
	if ((d = decl_find(decls, path, &below)) != NULL) {
		if (decl_key(d, &k) < 0)
			return conf_error(p, s, "'%s': stage '%s' declares an "
			    "unknown type", name, ladderd_ctx_str(d, "stage",
						     "?"));
		if ((rc = convert_value(p, s, &k, &v)) < 0) {
			size_t len = strlen(p->err);

			/* Whose range it is: the stage's. */
			(void)snprintf(p->err + len, p->errlen - len,
			    " (stage %s)", ladderd_ctx_str(d, "stage", "?"));
			return rc;
		}
	} else if (below) {
		if ((rc = check_group(p, s, path, decls, &v)) < 0)
			return rc;
	} else
		return conf_error(p, s, "unknown setting '%s' (no stage of the "
		    "workflows declares %s)", name, path);
	cJSON_AddItemToObject(obj, name, v);
	return 0;
}

/*
 * The group at `prefix` in declaration order (so a file and the defaults
 * print alike): each declared setting below it from `given` (the file's,
 * checked; emptied here) or its default.
 */
static int
check_defaults(struct parse *p, const char *prefix, const cJSON *decls,
    cJSON *given, cJSON *obj)
{
	size_t n = strlen(prefix);
	const cJSON *d;

	cJSON_ArrayForEach(d, decls) {
		const char *name = ladderd_ctx_str(d, "name", ""), *rel, *dot;
		char sub[128], path[256];
		struct key k;
		cJSON *v = NULL;
		int rc;

		if (strncmp(name, prefix, n) != 0 || name[n] != '.')
			continue;
		rel = name + n + 1;
		dot = strchr(rel, '.');
		(void)snprintf(sub, sizeof(sub), "%.*s",
		    dot ? (int)(dot - rel) : (int)strlen(rel), rel);
		if (cJSON_GetObjectItemCaseSensitive(obj, sub) != NULL)
			continue;
		if ((v = cJSON_DetachItemFromObjectCaseSensitive(given, sub)) !=
		    NULL)
			;
		else if (dot != NULL) {
			if (join_path(path, sizeof(path), prefix, sub) < 0)
				return -ENAMETOOLONG;
			if ((rc = check_group(p, NULL, path, decls, &v)) < 0)
				return rc;
		} else if (decl_key(d, &k) == 0)
			v = default_value(&k);
		if (v == NULL)
			return -ENOMEM;
		cJSON_AddItemToObject(obj, sub, v);
	}
	return 0;
}

/*
 * Group `g` (NULL: absent, all defaults) at context path `prefix`
 * ("profile.video", "download") checked against `decls` into *ret.
 */
static int
check_group(struct parse *p, const config_setting_t *g, const char *prefix,
    const cJSON *decls, cJSON **ret)
{
	cJSON *given = cJSON_CreateObject(), *obj = cJSON_CreateObject();
	int rc = given && obj ? 0 : -ENOMEM;

	if (rc == 0 && g != NULL && !config_setting_is_group(g))
		rc = conf_error(p, g, "'%s' must be a group { ... }",
		    config_setting_name(g));
	for (int i = 0; rc == 0 && g && i < config_setting_length(g); i++)
		rc = check_member(p, config_setting_get_elem(g, i), prefix,
		    decls, given);
	if (rc == 0)
		rc = check_defaults(p, prefix, decls, given, obj);
	cJSON_Delete(given);
	if (rc < 0) {
		cJSON_Delete(obj);
		return rc;
	}
	*ret = obj;
	return 0;
}

/*
 * Check the groups below `g` (the file's root or one profile; may be NULL)
 * that stages own: each group the declarations under `scope` ("" for the
 * top level, "profile") name, then refuse any other group the daemon does
 * not own either. Results go into `out`, replacing what is there.
 */
static int
check_scope(struct parse *p, const config_setting_t *g, const char *scope,
    const struct key *own, const char *const *extra, const cJSON *decls,
    cJSON *out)
{
	size_t n = strlen(scope);
	cJSON *seen = cJSON_CreateArray();
	const cJSON *d;
	int rc = seen ? 0 : -ENOMEM;

	cJSON_ArrayForEach(d, decls) {
		const char *name = ladderd_ctx_str(d, "name", "");
		char group[128], path[256];
		cJSON *v = NULL;

		if (rc < 0 || (n && (strncmp(name, scope, n) != 0 ||
					name[n] != '.')))
			continue;
		if (!n && strncmp(name, "profile.", 8) == 0)
			continue;
		name += n ? n + 1 : 0;
		(void)snprintf(group, sizeof(group), "%.*s",
		    (int)strcspn(name, "."), name);
		if (list_has(seen, group))
			continue;
		cJSON_AddItemToArray(seen, cJSON_CreateString(group));
		(void)snprintf(path, sizeof(path), "%s%s%s", scope,
		    n ? "." : "", group);
		if ((rc = check_group(p, g ? config_setting_get_member(g,
						 group) : NULL,
			 path, decls, &v)) < 0)
			continue;
		/* Appended, not replaced in place: declaration order. */
		cJSON_DeleteItemFromObjectCaseSensitive(out, group);
		cJSON_AddItemToObject(out, group, v);
	}
	for (int i = 0; rc == 0 && g && i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		int skip = find_key(own, name) != NULL ||
		    list_has(seen, name);

		for (const char *const *e = extra; *e; e++)
			skip |= strcmp(*e, name) == 0;
		if (!skip)
			rc = conf_error(p, s, "unknown setting '%s' (no stage of "
			    "the workflows declares settings in it)", name);
	}
	cJSON_Delete(seen);
	return rc;
}

/*
 * A declaration names a group of its own: "profile.GROUP.KEY" with a GROUP
 * that is not a profile key of the daemon, or "STAGE.KEY" at the top.
 */
static int
check_decls(struct parse *p, const cJSON *decls, const char *const *top_extra,
    const char *const *profile_extra)
{
	const cJSON *d;

	cJSON_ArrayForEach(d, decls) {
		const char *name = ladderd_ctx_str(d, "name", "");
		const char *rest = name, *const *extra = top_extra;
		const struct key *own = top_keys;
		char group[128];
		int bad;

		if (strncmp(name, "profile.", 8) == 0) {
			rest = name + 8;
			own = profile_keys;
			extra = profile_extra;
		}
		(void)snprintf(group, sizeof(group), "%.*s",
		    (int)strcspn(rest, "."), rest);
		bad = strchr(rest, '.') == NULL || find_key(own, group) != NULL;
		for (const char *const *e = extra; *e; e++)
			bad |= strcmp(*e, group) == 0;
		if (bad) {
			snprintf(p->err, p->errlen, "stage '%s' declares "
			    "setting '%s', which is not in a group of its own "
			    "(ladderd-stages(7) SETTINGS)",
			    ladderd_ctx_str(d, "stage", "?"), name);
			return -EINVAL;
		}
	}
	return 0;
}

int
ladderd_conf_check_settings(struct ladderd_conf *c, const cJSON *decls,
    char *err, size_t errlen)
{
	static const char *const top_extra[] = { "watch", "profiles",
		"workflow", NULL };
	static const char *const profile_extra[] = { "workflow", NULL };
	struct parse p = { c->src ? c->src->name : "?", NULL, err, errlen };
	const config_setting_t *root, *profiles;
	cJSON *groups;
	int rc;

	err[0] = '\0';
	if (c->src == NULL) /* only conf.c makes a conf */
		return -EINVAL;
	if ((rc = check_decls(&p, decls, top_extra, profile_extra)) < 0)
		return rc;
	root = config_root_setting(&c->src->cfg);
	profiles = config_setting_get_member(root, "profiles");
	if ((groups = cJSON_CreateObject()) == NULL)
		return -ENOMEM;
	if ((rc = check_scope(&p, root, "", top_keys, top_extra, decls,
		 groups)) < 0) {
		cJSON_Delete(groups);
		return rc;
	}
	cJSON_Delete(c->stage_groups);
	c->stage_groups = groups;
	for (size_t i = 0; i < c->nprofiles; i++) {
		const config_setting_t *g = profiles ?
		    config_setting_get_member(profiles, c->profiles[i].name) :
		    NULL;

		if ((rc = check_scope(&p, g, "profile", profile_keys,
			 profile_extra, decls, c->profiles[i].settings)) < 0)
			return rc;
	}
	return 0;
}

static void
source_free(struct ladderd_conf_source *src)
{
	if (src == NULL)
		return;
	config_destroy(&src->cfg);
	free(src->name);
	free(src);
}

/*
 * Parse what src->cfg read (read_ok: libconfig's verdict). On success the
 * conf keeps `src` (for ladderd_conf_check_settings), else it is freed.
 */
static int
conf_parse(struct ladderd_conf_source *src, struct parse *p, int read_ok,
    struct ladderd_conf **ret)
{
	config_t *cfg = &src->cfg;
	int rc;

	if (!read_ok) {
		snprintf(p->err, p->errlen, "%s:%d: %s",
		    config_error_file(cfg) ? config_error_file(cfg) : p->file,
		    config_error_line(cfg), config_error_text(cfg));
		rc = -EINVAL;
	} else if ((src->name = strdup(p->file)) == NULL)
		rc = -ENOMEM;
	else if ((rc = conf_from_config(cfg, p, ret)) == 0) {
		(*ret)->src = src;
		return 0;
	}
	source_free(src);
	return rc;
}

/*
 * Load and validate `file`. On error returns a negative errno and puts
 * "FILE:LINE: reason" in err. The result is owned by the caller
 * (ladderd_conf_free).
 */
int
ladderd_conf_load(const char *file, struct ladderd_conf **ret_conf, char *err,
    size_t errlen)
{
	return ladderd_conf_load_as(file, NULL, ret_conf, err, errlen);
}

/*
 * Like ladderd_conf_load, with relative paths resolved against `base_dir`
 * instead of the file's own folder (a snapshot of a config file kept
 * elsewhere, see supervisor.c). base_dir NULL: the file's folder. file
 * NULL: no file, the built-in defaults (the one place that says so).
 */
int
ladderd_conf_load_as(const char *file, const char *base_dir,
    struct ladderd_conf **ret_conf, char *err, size_t errlen)
{
	char abs[PATH_MAX], dir[PATH_MAX];
	struct parse p = { file, NULL, err, errlen };
	struct ladderd_conf_source *src;
	FILE *f;
	int rc;

	if (file == NULL)
		return ladderd_conf_load_string("", NULL, ret_conf, err, errlen);
	err[0] = '\0';
	if ((f = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "cannot open config '%s': %s", file,
		    strerror(errno));
		return -errno;
	}
	fclose(f);
	if (realpath(file, abs) == NULL)
		snprintf(abs, sizeof(abs), "%s", file);
	snprintf(dir, sizeof(dir), "%s", base_dir ? base_dir : abs);
	if (!base_dir && strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	p.dir = dir;
	if ((src = calloc(1, sizeof(*src))) == NULL)
		return -ENOMEM;
	config_init(&src->cfg);
	config_set_include_dir(&src->cfg, dir);
	rc = conf_parse(src, &p,
	    config_read_file(&src->cfg, file) == CONFIG_TRUE, ret_conf);
	if (rc == 0 && ((*ret_conf)->file = strdup(abs)) == NULL) {
		ladderd_conf_free(*ret_conf);
		*ret_conf = NULL;
		return -ENOMEM;
	}
	return rc;
}

/* Same from a string (tests, built-in defaults); `dir` may be NULL. */
int
ladderd_conf_load_string(const char *text, const char *dir,
    struct ladderd_conf **ret_conf, char *err, size_t errlen)
{
	struct parse p = { "<string>", dir, err, errlen };
	struct ladderd_conf_source *src = calloc(1, sizeof(*src));

	err[0] = '\0';
	if (src == NULL)
		return -ENOMEM;
	config_init(&src->cfg);
	return conf_parse(src, &p,
	    config_read_string(&src->cfg, text) == CONFIG_TRUE, ret_conf);
}

void
ladderd_conf_free(struct ladderd_conf *c)
{
	if (c == NULL)
		return;
	free(c->file);
	free(c->spool);
	free(c->publish);
	free(c->status);
	free(c->failed);
	free(c->archive);
	free(c->stage_path);
	free(c->user);
	cJSON_Delete(c->stage_groups);
	source_free(c->src);
	cJSON_Delete(c->notify);
	cJSON_Delete(c->slurm);
	free(c->runner);
	for (size_t i = 0; i < c->nwatches; i++) {
		free(c->watches[i].path);
		free(c->watches[i].profile);
	}
	free(c->watches);
	for (size_t i = 0; c->profiles && i < c->nprofiles; i++) {
		free(c->profiles[i].name);
		cJSON_Delete(c->profiles[i].settings);
		if (c->profiles[i].workflow) {
			workflow_release(c->profiles[i].workflow);
			free(c->profiles[i].workflow);
		}
	}
	free(c->profiles);
	workflow_release(&c->workflow);
	free(c);
}

const struct ladderd_profile *
ladderd_conf_profile(const struct ladderd_conf *c, const char *name)
{
	for (size_t i = 0; i < c->nprofiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The configured profile names, sorted, comma-separated, into buf (for
 * messages: "unknown profile 'x' (configured: default, mobile)"). A list
 * that does not fit ends in "...".
 */
void
ladderd_conf_profile_names(const struct ladderd_conf *c, char *buf,
    size_t size)
{
	const char **names = calloc(c->nprofiles + 1, sizeof(*names));
	size_t len = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (names == NULL)
		return;
	for (size_t i = 0; i < c->nprofiles; i++)
		names[i] = c->profiles[i].name;
	qsort(names, c->nprofiles, sizeof(*names), cmp_names);
	for (size_t i = 0; i < c->nprofiles; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
		    names[i]);

		if (n < 0 || (size_t)n >= size - len) {
			if (size > 4)
				snprintf(buf + size - 4, 4, "...");
			break;
		}
		len += (size_t)n;
	}
	free(names);
}

/*
 * The first entry naming `stage` in the workflow of profile `pr` (NULL:
 * the global workflow), pre, then rendition, then post; NULL when the
 * workflow does not use it. Borrowed from the config.
 */
const struct ladderd_stage_ref *
ladderd_conf_stage_ref(const struct ladderd_conf *c,
    const struct ladderd_profile *pr, const char *stage)
{
	const struct ladderd_workflow *wf = ladderd_conf_workflow(c, pr);

	for (int ph = 0; ph < LADDERD_PHASE__COUNT; ph++)
		for (size_t i = 0; i < wf->n[ph]; i++)
			if (strcmp(wf->stages[ph][i].name, stage) == 0)
				return &wf->stages[ph][i];
	return NULL;
}

const struct ladderd_workflow *
ladderd_conf_workflow(const struct ladderd_conf *c,
    const struct ladderd_profile *pr)
{
	return pr && pr->workflow ? pr->workflow : &c->workflow;
}

static void
print_workflow(FILE *out, const char *indent, const struct ladderd_workflow *wf)
{
	for (int ph = 0; ph < LADDERD_PHASE__COUNT; ph++) {
		fprintf(out, "%s%-9s =", indent, ladderd_phase_names[ph]);
		for (size_t i = 0; i < wf->n[ph]; i++) {
			char *a = cJSON_PrintUnformatted(wf->stages[ph][i].args);

			fprintf(out, " %s%s%s", wf->stages[ph][i].name,
			    a && strcmp(a, "{}") != 0 ? a : "",
			    i + 1 < wf->n[ph] ? " ->" : "");
			cJSON_free(a);
		}
		fputc('\n', out);
	}
}

/* The effective settings, for check-config. */
void
ladderd_conf_print(const struct ladderd_conf *c, FILE *out)
{
	const cJSON *g;
	char *s;

	fprintf(out, "config     %s\n", c->file ? c->file : "(built-in defaults)");
	fprintf(out, "spool      %s\npublish    %s\nstatus     %s\n"
		     "failed     %s\nstage_dir  %s\n",
	    c->spool, c->publish, c->status, c->failed, c->stage_path);
	fprintf(out, "keep_source %s%s%s\n",
	    c->archive_sources ? "archive -> " : "delete",
	    c->archive_sources ? c->archive : "",
	    c->archive_sources ? "/<task_id>/" : "");
	fprintf(out, "max_jobs %d  max_rungs %d  rung_retries %d  "
		     "rung_timeout %ds  rung_threads %d  settle_time %ds  "
		     "shutdown_timeout %ds\n",
	    c->max_jobs, c->max_rungs, c->rung_retries, c->rung_timeout,
	    c->rung_threads,
	    c->settle_time, c->shutdown_timeout);
	fprintf(out, "max_downloads %d  max_retries %d  retry_delay %ds  "
		     "max_metadata %d\n",
	    c->max_downloads, c->max_retries, c->retry_delay,
	    c->max_metadata);
	fprintf(out, "umask      %03o\n", (unsigned)c->umask);
	fprintf(out, "user       %s\n", c->user && c->user[0] ? c->user :
	    "(none: no privileges to drop)");
	cJSON_ArrayForEach(g, c->stage_groups) {
		s = cJSON_PrintUnformatted(g);
		fprintf(out, "%-10s %s\n", g->string, s ? s : "");
		cJSON_free(s);
	}
	{
		cJSON *n = cJSON_Duplicate(c->notify, 1);

		/* Never print the secret. */
		if (n && ladderd_ctx_str(n, "secret", "")[0])
			ladderd_ctx_set(n, "secret", cJSON_CreateString("***"));
		if (n && ladderd_ctx_str(n, "manifest_webhook_secret", "")[0])
			ladderd_ctx_set(n, "manifest_webhook_secret",
			    cJSON_CreateString("***"));
		if (n && ladderd_ctx_str(n, "amqp.url", "")[0])
			ladderd_ctx_set(cJSON_GetObjectItemCaseSensitive(n,
					    "amqp"),
			    "url", cJSON_CreateString("*** (may hold a "
						      "password)"));
		s = cJSON_PrintUnformatted(n);
		fprintf(out, "notify     %s\n", s ? s : "");
		cJSON_free(s);
		cJSON_Delete(n);
	}
	s = cJSON_PrintUnformatted(c->slurm);
	fprintf(out, "runner     %s\nslurm      %s\n", c->runner, s ? s : "");
	cJSON_free(s);
	for (size_t i = 0; i < c->nwatches; i++)
		fprintf(out, "watch      %s -> profile %s\n", c->watches[i].path,
		    c->watches[i].profile);
	fprintf(out, "workflow\n");
	print_workflow(out, "  ", &c->workflow);
	for (size_t i = 0; i < c->nprofiles; i++) {
		s = cJSON_PrintUnformatted(c->profiles[i].settings);
		fprintf(out, "profile %s %s\n", c->profiles[i].name, s ? s : "");
		cJSON_free(s);
		if (c->profiles[i].workflow) {
			fprintf(out, "  workflow\n");
			print_workflow(out, "    ", c->profiles[i].workflow);
		}
	}
}

const char *
ladderd_conf_cli_file(const char *file)
{
	if (file == NULL && access(SYSCONFDIR "/ladderd.conf", R_OK) == 0)
		file = SYSCONFDIR "/ladderd.conf";
	return file;
}

int
ladderd_conf_load_cli(const char *file, struct ladderd_conf **ret_conf,
    char *err, size_t errlen)
{
	return ladderd_conf_load_as(ladderd_conf_cli_file(file),
	    getenv("LADDERD_CONF_DIR"), ret_conf, err, errlen);
}
