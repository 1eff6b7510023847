/*
 * settings.h - the settings the stages of a config declare (struct
 * ladderd_setting in stage.h), gathered into one JSON array of
 * { stage, name, type, default, min, max, choices, doc }: the schema
 * ladderd_conf_check_settings() checks the stages' groups of the config
 * against, the list `ladderd check-config` prints, and the source of the
 * SETTINGS section of ladderd-stages(7) (`ladderd settings --man`).
 *
 * Reading a declaration means loading the stage, that is running plugin
 * code, which the supervisor never does: it asks a short worker
 * (`ladderd settings --json`) instead. A stage that does not load
 * declares nothing here; check-config reports why it did not load.
 */
#ifndef LADDERD_SETTINGS_H
#define LADDERD_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "conf.h"

/*
 * The declarations of every stage the config's workflows name, into
 * *ret_decls (caller frees). in_worker: ask `ladderd settings --json`
 * (the supervisor) rather than load the stages here. Returns 0, or a
 * negative errno with the reason in err (a stage that declares a setting
 * badly, or two that disagree).
 */
int ladderd_settings_collect(const struct ladderd_conf *conf, bool in_worker,
    cJSON **ret_decls, char *err, size_t errlen);

/*
 * collect + ladderd_conf_check_settings: what every program that starts
 * tasks does after loading the config. Returns 0 or a negative errno with
 * "FILE:LINE: reason" (or the stage's fault) in err.
 */
int ladderd_settings_check(struct ladderd_conf *conf, bool in_worker,
    char *err, size_t errlen);

/* The declarations as check-config lists them, one line each. */
void ladderd_settings_print(const cJSON *decls, FILE *out);

/* `ladderd settings [-c FILE] [--json | --man]` (ladderd(8)). */
int ladderd_settings_main(int argc, char **argv);

#endif
