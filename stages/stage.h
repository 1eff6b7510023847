/*
 * <ladderd/stage.h> - the stage plugin ABI of ladderd.
 *
 * A stage is a shared object loaded with dlopen(RTLD_NOW | RTLD_LOCAL). It
 * exports exactly one symbol, `ladderd_stage_entry`, a struct ladderd_stage
 * (use LADDERD_STAGE_DEFINE). The host refuses a plugin whose `abi` differs
 * from LADDERD_STAGE_ABI_VERSION, whose `size` is too small, or whose name
 * differs from its file name (stage "probe" lives in probe.so).
 *
 * Stages never link against daemon symbols: host services (fail, log,
 * progress, paths, status events, durable file and folder changes) arrive
 * as function pointers in struct ladderd_call. cJSON is the system shared library in both (one allocator).
 *
 * The context (call->ctx) is a cJSON object owned by the host. A stage
 * borrows it for the duration of run(): it reads what it needs, adds its
 * results under its own top-level key with ladderd_ctx_set(), and never keeps
 * a pointer into it after returning. Every named argument of the stage (from
 * its workflow entry, or the ladder rung as "rung") is merged into the
 * context before run() is called.
 *
 * Rules: the ABI version is bumped when a field changes meaning or position;
 * fields are only appended (the host reads a field only when `size` covers
 * it), so appending does not bump it.
 */
#ifndef LADDERD_STAGE_H
#define LADDERD_STAGE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define LADDERD_STAGE_ABI_VERSION 1

/* What run() returns. */
enum ladderd_rc {
	LADDERD_OK = 0,	   /* done; the chain continues */
	LADDERD_SKIP = 1,  /* declined (nothing to do); the chain continues */
	LADDERD_STOP = 2,  /* this chain ends successfully here (a dropped rung) */
	LADDERD_RETRY = 3, /* transient failure (network, disk full): retry later */
	LADDERD_FAIL = 4,  /* permanent failure (bad media): the task fails */
};

/* Log levels for call->log. */
enum ladderd_level {
	LADDERD_LOG_ERR = 3,
	LADDERD_LOG_WARN = 4,
	LADDERD_LOG_INFO = 6,
	LADDERD_LOG_DEBUG = 7,
};

/*
 * The resources of a task. One host function (call->path) alone knows where
 * they live; stages never build these paths by hand. `rung` is the rung name
 * for the per-rung kinds and ignored (may be NULL) for the others.
 */
enum ladderd_path {
	LADDERD_PATH_WORK = 0,	    /* the task's work folder */
	LADDERD_PATH_SOURCE_DIR,    /* where the source file is kept */
	LADDERD_PATH_PACKAGE,	    /* the package being built (published as is) */
	LADDERD_PATH_RUNG_STATE,    /* a rung's private folder (logs, temp) */
	LADDERD_PATH_TRANSCODED,    /* a rung's transcoded file (MP4) */
	LADDERD_PATH_HLS_DIR,	    /* a rung's folder inside the package */
	LADDERD_PATH_HLS_PLAYLIST,  /* a rung's media playlist */
	LADDERD_PATH_HLS_FRAGMENT,  /* a rung's master-playlist fragment */
	LADDERD_PATH_MASTER,	    /* the master playlist */
	LADDERD_PATH_MPD,	    /* the DASH manifest */
	LADDERD_PATH_DASH_DIR,	    /* DASH-only segments (MPEG-TS HLS mode) */
	LADDERD_PATH_PUBLISH,	    /* publish/<task_id> */
	LADDERD_PATH_PUBLISH_ROOT,  /* the publish folder */
	LADDERD_PATH_FRAGMENTS_DIR, /* all master-playlist fragments */
	/* Appended in ABI 1 (the host's own files, readable by stages too): */
	LADDERD_PATH_CONTEXT,	     /* the task's checkpoint (context.json) */
	LADDERD_PATH_CLAIM,	     /* what ingest recorded of the drop */
	LADDERD_PATH_MANIFEST,	     /* a dropped manifest, as claimed */
	LADDERD_PATH_RUNG_REQUEST,   /* a rung's request (host to worker) */
	LADDERD_PATH_RUNG_RESULT,    /* a rung's result (worker to host) */
	LADDERD_PATH_RUNG_RUNNING,   /* the stage a rung worker is in */
	LADDERD_PATH_PUBLISHED_MASTER, /* publish/<task_id>/master.m3u8 */
	LADDERD_PATH_PUBLISHED_MPD,    /* publish/<task_id>/manifest.mpd */
	LADDERD_PATH_POSTER,	       /* the package's poster.jpg */
	LADDERD_PATH_THUMBS_DIR,       /* its seek-bar sprites, VTT, playlist */
	LADDERD_PATH_RUNG_ENDED,       /* exists once a unit's process ended */
	LADDERD_PATH__COUNT
};

/*
 * What the host reads from the context, and what it writes for stages
 * (the daemon knows no stage by name; these keys are the whole contract):
 *
 *   ctx.ladder (pre phase, optional): the rendition units, in order. Each
 *     is an object with "name" ([A-Za-z0-9._-]), "kind" ("video", "audio")
 *     and whatever the rendition stages read ("height", "bitrate", ...);
 *     without it the host runs ctx.profile.ladder. hls_header writes it.
 *   ctx.group (pre phase, optional): one more unit that runs together with
 *     some of the ladder's, e.g. a decoder feeding them:
 *       { "unit": "_name", "label": "what users read", "stages": [...],
 *         "members": ["rung", ...], "requires_stage": "stage" }
 *     The host plans it only when its rendition workflow runs
 *     `requires_stage` and two or more members still have to run; then it
 *     starts the unit (its own chain: `stages`) and the members at once,
 *     with one budget of CPUs, sets ctx.rung.group = unit in each member's
 *     context, and treats a failure of the unit as optional (the members
 *     are retried alone: without ctx.rung.group). A unit name starting
 *     with '_' is internal: users read its label.
 *   ctx.cleanup.shm (any stage): POSIX shared memory names ("/ladderd-...")
 *     the task may leave behind. The host removes them before the rendition
 *     phase, after it, and when it finds the task's job dead.
 *   ctx.summary (rendition phase): what a rung's chain reports for the
 *     task's summary, the status and `ladderd run`, each key set by the
 *     stage that knows it: "width", "height", "frames" (video frames
 *     encoded), "codecs" (RFC 6381, what the rung carries), "bitrate"
 *     (measured), "filters", "decoder" ("shared" or "own"; transcode and
 *     its join), "peak_bitrate", "avg_bitrate" (the playlist's;
 *     chunk_hls), "bandwidth" (hls_info), "reason" (why it was dropped;
 *     target_size).
 *   LADDERD_PATH_RUNG_ENDED: the host creates this (empty) file when a
 *     unit's process has ended, and removes it before the unit starts
 *     again. Units of a group use it to stop waiting for a peer that will
 *     never come.
 */

struct ladderd_call;

/* Host services, valid for the duration of one run(). */
struct ladderd_call {
	uint32_t abi;  /* LADDERD_STAGE_ABI_VERSION of the host */
	uint32_t size; /* sizeof(struct ladderd_call) of the host */
	cJSON *ctx;    /* the context, borrowed (see top of file) */
	const char *stage; /* this stage's name */
	const char *rung;  /* the rung name in a rendition chain, else NULL */

	/* Record the failure message in ctx.error (printf-style). */
	void (*fail)(struct ladderd_call *call, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
	/* Log a line prefixed with task, stage and rung. */
	void (*log)(struct ladderd_call *call, int level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
	/* Report progress in 0..1; the host rate-limits status events. */
	void (*progress)(struct ladderd_call *call, double fraction);
	/*
	 * Write the path of `kind` for this task (and `rung`) into buf.
	 * Returns 0, or -ENAMETOOLONG / -EINVAL.
	 */
	int (*path)(struct ladderd_call *call, enum ladderd_path kind,
	    const char *rung, char *buf, size_t size);
	/*
	 * Emit a status event. `fields` (borrowed) is merged over the
	 * event the host builds from the context (task_id, seq, time, ...).
	 * Returns 0 or a negative errno.
	 */
	int (*event)(struct ladderd_call *call, const cJSON *fields);
	/*
	 * Write `len` bytes to `path` atomically (temp file, fsync, rename,
	 * fsync of the directory). Returns 0 or a negative errno.
	 */
	int (*write_atomic)(struct ladderd_call *call, const char *path,
	    const void *data, size_t len);
	/* Nonzero when the task is being stopped: return LADDERD_RETRY. */
	int (*cancelled)(struct ladderd_call *call);
	/* Number of CPU threads this stage may use (the host's budget). */
	int threads;
	void *unused; /* was `host`, never set: kept for the layout */
	/*
	 * Create folder `path` and its parents (mkdir -p, mode 0755).
	 * Returns 0 or a negative errno. (Appended in ABI 1, taking the
	 * first reserved slot.)
	 */
	int (*mkdirs)(struct ladderd_call *call, const char *path);
	/*
	 * The next three took the other reserved slots of ABI 1 (the size
	 * is unchanged; a host built before them left the slots NULL).
	 * Each returns 0 or a negative errno.
	 *
	 * Commit a finished file: fsync `tmp`, rename it to `path` (in the
	 * same folder), fsync the folder, so after a crash `path` is whole
	 * or absent. On failure before the rename `tmp` is still there, for
	 * the caller to remove.
	 */
	int (*commit_file)(struct ladderd_call *call, const char *tmp,
	    const char *path);
	/*
	 * Make folder `from` appear at `to` in one step, replacing an
	 * existing `to` atomically: readers see the old tree or the new one,
	 * never a mix. Across file systems the tree is first copied beside
	 * `to`. `from` is gone on success.
	 */
	int (*replace_dir)(struct ladderd_call *call, const char *from,
	    const char *to);
	/*
	 * Set the modes of the tree at `path`: folders `dmode`, regular
	 * files `fmode`; anything else (a symlink) is left alone, never
	 * followed.
	 */
	int (*chmod_tree)(struct ladderd_call *call, const char *path,
	    uint32_t dmode, uint32_t fmode);
};

/*
 * A setting a stage declares: the host validates the config against it
 * (type, range, choices; unknown keys are refused with FILE:LINE), fills
 * in the default when the config leaves the key out, lists it in
 * `ladderd check-config` and `ladderd settings`, and the stage reads it from
 * the context with ladderd_setting_num() / _str() / _bool() below.
 *
 * `name` is where the value is in the context, and so in the config:
 *   "profile.GROUP.KEY"  in every profile: profiles = { p = { GROUP = {
 *                        KEY = ...; }; }; } (GROUP is not one of the
 *                        daemon's profile keys, ladderd.conf(5));
 *   "STAGE.KEY"          a top-level group named after the stage itself:
 *                        STAGE = { KEY = ...; };
 * Deeper names ("profile.GROUP.SUB.KEY") are groups within the group.
 * Two stages may declare the same name only with the same type, default
 * and range. A table ends with an entry whose name is NULL.
 */
enum ladderd_setting_type {
	LADDERD_SETTING_INT = 1,  /* an integer within min..max */
	LADDERD_SETTING_FLOAT,	  /* a number within min..max */
	LADDERD_SETTING_BOOL,	  /* true or false */
	LADDERD_SETTING_STRING,	  /* a string, one of `choices` if given */
	LADDERD_SETTING_STRINGS,  /* a list of strings */
	LADDERD_SETTING_NETWORKS, /* a list of CIDR strings ("10.0.0.0/8") */
};

struct ladderd_setting {
	const char *name; /* the context path, see above */
	uint32_t type;	  /* enum ladderd_setting_type */
	/*
	 * The default as config text: "4", "1.5", "true", "medium"; a
	 * list's items comma-separated ("http,https"); NULL or "" for none
	 * (an empty string, an empty list).
	 */
	const char *dflt;
	double min, max; /* numbers: the range, inclusive */
	/*
	 * Strings: the allowed values, "a|b|c" (NULL: any). Numbers: values
	 * allowed besides min..max ("0" for "0 = off"), NULL for none.
	 */
	const char *choices;
	const char *doc; /* one line for the listings and the man page */
};

/* The states of struct ladderd_stage that the host reads a role from. */
#define LADDERD_STATE_ENCODING "transcoding"
#define LADDERD_STATE_FETCHING "downloading"

/* The descriptor a plugin exports as `ladderd_stage_entry`. */
struct ladderd_stage {
	uint32_t abi;  /* LADDERD_STAGE_ABI_VERSION the plugin was built for */
	uint32_t size; /* sizeof(struct ladderd_stage) of the plugin */
	const char *name;    /* must match the file name */
	const char *version; /* the stage's own version, free form */
	/*
	 * The task state while this stage runs ("downloading", "probing",
	 * "transcoding", "packaging", "publishing") or NULL to keep the
	 * current one. The host emits a status event when it changes.
	 * Two states also say what the stage is to the host: a rendition
	 * stage in LADDERD_STATE_ENCODING is the rung's encode (a chunk of a
	 * rung runs the stages up to it, and its context key is the chunk's
	 * result the rung's own unit joins), and a pre stage in
	 * LADDERD_STATE_FETCHING is where `fetch` work ends.
	 */
	const char *state;
	/*
	 * Optional. Called once after loading, with the stage's arguments
	 * from the config (or NULL). Cheap and side-effect free: used by
	 * check-config too. Returns 0 or a negative errno; *ret_state is
	 * passed to run() and fini().
	 */
	int (*init)(const cJSON *args, void **ret_state);
	/* Required. Runs the stage on call->ctx. */
	enum ladderd_rc (*run)(void *state, struct ladderd_call *call);
	/* Optional. Frees what init() allocated. */
	void (*fini)(void *state);
	/*
	 * Optional (NULL: none). The settings this stage reads from the
	 * context, ended by an entry whose name is NULL (see struct
	 * ladderd_setting). Appended in ABI 1 in the first reserved slot:
	 * plugins built before it have NULL there, so the ABI version did
	 * not change.
	 */
	const struct ladderd_setting *settings;
	void *reserved[3];
};

_Static_assert(offsetof(struct ladderd_stage, abi) == 0, "abi first");
_Static_assert(offsetof(struct ladderd_stage, size) == 4, "size second");
_Static_assert(offsetof(struct ladderd_call, abi) == 0, "abi first");
_Static_assert(offsetof(struct ladderd_call, chmod_tree) ==
	offsetof(struct ladderd_call, mkdirs) + 3 * sizeof(void *),
    "mkdirs, commit_file, replace_dir and chmod_tree fill the four slots "
    "ABI 1 reserved: the size of struct ladderd_call is unchanged");
_Static_assert(offsetof(struct ladderd_stage, reserved) ==
	offsetof(struct ladderd_stage, settings) + sizeof(void *),
    "settings takes the first reserved slot");

#define LADDERD_STAGE_DEFINE(NAME, VERSION, STATE, INIT, RUN, FINI)          \
	__attribute__((visibility("default"))) const struct ladderd_stage    \
	    ladderd_stage_entry = {                                          \
		    .abi = LADDERD_STAGE_ABI_VERSION,                        \
		    .size = sizeof(struct ladderd_stage),                    \
		    .name = (NAME),                                          \
		    .version = (VERSION),                                    \
		    .state = (STATE),                                        \
		    .init = (INIT),                                          \
		    .run = (RUN),                                            \
		    .fini = (FINI),                                          \
	    }

/* The same with a table of settings (struct ladderd_setting). */
#define LADDERD_STAGE_DEFINE_SETTINGS(NAME, VERSION, STATE, SETTINGS, INIT, \
    RUN, FINI)                                                           \
	__attribute__((visibility("default"))) const struct ladderd_stage    \
	    ladderd_stage_entry = {                                          \
		    .abi = LADDERD_STAGE_ABI_VERSION,                        \
		    .size = sizeof(struct ladderd_stage),                    \
		    .name = (NAME),                                          \
		    .version = (VERSION),                                    \
		    .state = (STATE),                                        \
		    .init = (INIT),                                          \
		    .run = (RUN),                                            \
		    .fini = (FINI),                                          \
		    .settings = (SETTINGS),                                  \
	    }

/*
 * Context helpers. Paths are dotted ("probe.video.width"); lookups are
 * case-sensitive. Getters return the item or the given default and never
 * allocate.
 */
static inline const cJSON *
ladderd_ctx_get(const cJSON *ctx, const char *dotted)
{
	const cJSON *node = ctx;
	const char *p = dotted;
	char key[128];

	while (node != NULL && *p != '\0') {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n == 0 || n >= sizeof(key))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		node = cJSON_IsObject(node) ?
		    cJSON_GetObjectItemCaseSensitive(node, key) : NULL;
		p += n + (dot ? 1 : 0);
	}
	return node;
}

static inline const char *
ladderd_ctx_str(const cJSON *ctx, const char *dotted, const char *dflt)
{
	const cJSON *it = ladderd_ctx_get(ctx, dotted);

	return cJSON_IsString(it) ? it->valuestring : dflt;
}

static inline double
ladderd_ctx_num(const cJSON *ctx, const char *dotted, double dflt)
{
	const cJSON *it = ladderd_ctx_get(ctx, dotted);

	return cJSON_IsNumber(it) ? it->valuedouble : dflt;
}

static inline int
ladderd_ctx_bool(const cJSON *ctx, const char *dotted, int dflt)
{
	const cJSON *it = ladderd_ctx_get(ctx, dotted);

	if (cJSON_IsBool(it))
		return cJSON_IsTrue(it);
	if (cJSON_IsNumber(it))
		return it->valuedouble != 0;
	return dflt;
}

/*
 * A declared setting's value in the context, else its declared default
 * (the host fills the defaults in, so the fallback serves contexts built
 * by hand, as for `ladderd stage`).
 */
static inline double
ladderd_setting_num(const cJSON *ctx, const struct ladderd_setting *s)
{
	return ladderd_ctx_num(ctx, s->name,
	    s->dflt != NULL ? strtod(s->dflt, NULL) : 0);
}

static inline const char *
ladderd_setting_str(const cJSON *ctx, const struct ladderd_setting *s)
{
	return ladderd_ctx_str(ctx, s->name, s->dflt != NULL ? s->dflt : "");
}

static inline int
ladderd_setting_bool(const cJSON *ctx, const struct ladderd_setting *s)
{
	return ladderd_ctx_bool(ctx, s->name,
	    s->dflt != NULL && strcmp(s->dflt, "true") == 0);
}

/*
 * Set obj[key] = item, replacing an existing key (cJSON's AddItem would
 * append a duplicate). Ownership of `item` moves to obj only when this
 * returns 0; on -1 the caller still owns it.
 */
static inline int
ladderd_ctx_set(cJSON *obj, const char *key, cJSON *item)
{
	if (obj == NULL || item == NULL || !cJSON_IsObject(obj))
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL)
		return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item) ?
		    0 : -1;
	return cJSON_AddItemToObject(obj, key, item) ? 0 : -1;
}

/* obj[key] as an object, created empty if missing; NULL on error. */
static inline cJSON *
ladderd_ctx_obj(cJSON *obj, const char *key)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsObject(it))
		return it;
	it = cJSON_CreateObject();
	if (ladderd_ctx_set(obj, key, it) < 0) {
		cJSON_Delete(it);
		return NULL;
	}
	return it;
}

/*
 * Set ctx.summary[key], the rung's summary (see "What the host reads"
 * above), to a number or a string. Returns 0 or -1 (out of memory).
 */
static inline int
ladderd_summary_num(cJSON *ctx, const char *key, double v)
{
	cJSON *sum = ladderd_ctx_obj(ctx, "summary");
	cJSON *it = cJSON_CreateNumber(v);

	if (sum == NULL || ladderd_ctx_set(sum, key, it) < 0) {
		cJSON_Delete(it);
		return -1;
	}
	return 0;
}

static inline int
ladderd_summary_str(cJSON *ctx, const char *key, const char *v)
{
	cJSON *sum = ladderd_ctx_obj(ctx, "summary");
	cJSON *it = cJSON_CreateString(v);

	if (sum == NULL || ladderd_ctx_set(sum, key, it) < 0) {
		cJSON_Delete(it);
		return -1;
	}
	return 0;
}

/*
 * An entry of ctx.renditions (post stages): its rung name ("?" if
 * missing) and, in *ret_kind when not NULL, its kind ("video" or "audio").
 */
static inline const char *
ladderd_rendition(const cJSON *r, const char **ret_kind)
{
	if (ret_kind != NULL)
		*ret_kind = ladderd_ctx_str(r, "rung.kind", "video");
	return ladderd_ctx_str(r, "rung.name", "?");
}

/*
 * The language of the source's chosen audio track (ctx.probe), or NULL
 * when unknown, "und", or not a plain BCP 47 tag (letters, digits, '-'),
 * so it can go into an HLS quoted-string or an MPD attribute as is.
 */
static inline const char *
ladderd_ctx_audio_language(const cJSON *ctx)
{
	int want = (int)ladderd_ctx_num(ctx, "probe.audio_index", -1);
	const cJSON *it;

	cJSON_ArrayForEach(it, ladderd_ctx_get(ctx, "probe.audio")) {
		const char *lang = ladderd_ctx_str(it, "language", NULL);

		if ((int)ladderd_ctx_num(it, "index", -2) != want)
			continue;
		if (lang == NULL || lang[0] == '\0' ||
		    strcmp(lang, "und") == 0 || strlen(lang) > 35 ||
		    strspn(lang, "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
			strlen(lang))
			return NULL;
		return lang;
	}
	return NULL;
}

#endif /* LADDERD_STAGE_H */
