/*
 * conf.h - the configuration (libconfig), parsed and validated once into
 * struct ladderd_conf. No other module calls config_lookup*. Profiles and
 * stage arguments are kept as cJSON because they are merged into task
 * contexts as they are.
 */
#ifndef LADDERD_CONF_H
#define LADDERD_CONF_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

enum ladderd_phase {
	LADDERD_PHASE_PRE = 0,
	LADDERD_PHASE_RENDITION,
	LADDERD_PHASE_POST,
	LADDERD_PHASE__COUNT
};

struct ladderd_stage_ref {
	char *name;
	cJSON *args; /* an object, possibly empty */
};

struct ladderd_workflow {
	struct ladderd_stage_ref *stages[LADDERD_PHASE__COUNT];
	size_t n[LADDERD_PHASE__COUNT];
};

struct ladderd_profile {
	char *name;
	cJSON *settings; /* segment_duration, video, audio, ladder, ... */
	struct ladderd_workflow *workflow; /* NULL: the global workflow */
};

/* The parsed file, kept for the stage settings' FILE:LINE (conf.c). */
struct ladderd_conf_source;

struct ladderd_watch {
	char *path;
	char *profile;
};

struct ladderd_conf {
	char *file; /* NULL when built-in defaults were used */
	char *spool, *publish, *status, *failed;
	char *archive;	     /* where keep_source = "archive" moves sources */
	int archive_sources; /* keep_source = "archive" (else "delete") */
	char *stage_path; /* colon-separated directories */
	int max_jobs, max_rungs, rung_retries, rung_timeout, rung_threads;
	int settle_time, shutdown_timeout;
	int max_downloads;	      /* fetch jobs, apart from max_jobs */
	int max_retries, retry_delay; /* transient failures; first delay, s */
	int max_metadata;	      /* bytes of a manifest's metadata */
	mode_t umask; /* of the daemon and its workers */
	char *user;   /* "" or the account a root daemon becomes */
	/*
	 * The top-level groups stages declare settings in, by name
	 * ("download": { ... }); each is merged into every context under its
	 * name. Validated and completed with defaults by
	 * ladderd_conf_check_settings(), as given until then.
	 */
	cJSON *stage_groups;
	cJSON *notify;	 /* webhook, secret, allow_manifest_webhook, ... */
	char *runner;	 /* "local" or "slurm"; a profile may override it */
	cJSON *slurm;	 /* srun, partition, account, time_limit, ... */
	struct ladderd_watch *watches;
	size_t nwatches;
	struct ladderd_profile *profiles;
	size_t nprofiles;
	struct ladderd_workflow workflow;
	struct ladderd_conf_source *src; /* private to conf.c */
};

extern const char *const ladderd_phase_names[LADDERD_PHASE__COUNT];
/* "int", "float", ... by enum ladderd_setting_type (stage.h). */
extern const char *const ladderd_conf_type_names[];

int ladderd_conf_load(const char *file, struct ladderd_conf **ret_conf,
    char *err, size_t errlen);
int ladderd_conf_load_as(const char *file, const char *base_dir,
    struct ladderd_conf **ret_conf, char *err, size_t errlen);
int ladderd_conf_load_string(const char *text, const char *dir,
    struct ladderd_conf **ret_conf, char *err, size_t errlen);
/*
 * The command line's rule, shared by every program: FILE, else the
 * installed default (SYSCONFDIR/ladderd.conf) when it exists, else the
 * built-in defaults (ladderd_conf_cli_file says which file, or NULL). Workers of the daemon get its config snapshot as FILE
 * and, in LADDERD_CONF_DIR, the folder relative paths are relative to.
 */
int ladderd_conf_load_cli(const char *file, struct ladderd_conf **ret_conf,
    char *err, size_t errlen);
const char *ladderd_conf_cli_file(const char *file);
/*
 * The second half of loading: validate the groups stages own (a profile's
 * video = { ... }, the top-level download = { ... }) against `decls`, the
 * settings the configured stages declare (a JSON array of { stage, name,
 * type, default, min, max, choices, doc }, settings.h), and fill in their
 * defaults. Until it runs, those groups are kept as written, unchecked;
 * programs that start no task (status, notify, job workers, which get a
 * checked snapshot) skip it. Returns 0, or -EINVAL with "FILE:LINE: reason"
 * in err.
 */
int ladderd_conf_check_settings(struct ladderd_conf *conf, const cJSON *decls,
    char *err, size_t errlen);
void ladderd_conf_free(struct ladderd_conf *conf);
const struct ladderd_profile *ladderd_conf_profile(
    const struct ladderd_conf *conf, const char *name);
void ladderd_conf_profile_names(const struct ladderd_conf *conf, char *buf,
    size_t size);
const struct ladderd_stage_ref *ladderd_conf_stage_ref(
    const struct ladderd_conf *conf, const struct ladderd_profile *profile,
    const char *stage);
const struct ladderd_workflow *ladderd_conf_workflow(
    const struct ladderd_conf *conf, const struct ladderd_profile *profile);
void ladderd_conf_print(const struct ladderd_conf *conf, FILE *out);

#endif
