/*
 * host.h - runs one stage: merges its named arguments into the context,
 * calls init/run/fini with the host services of struct ladderd_call, and
 * records a failure in ctx.error.
 */
#ifndef LADDERD_HOST_H
#define LADDERD_HOST_H

#include <signal.h>

#include "plugin.h"

/* Set by the SIGTERM handler of a worker; stages see it via cancelled(). */
extern volatile sig_atomic_t ladderd_host_cancel;

enum ladderd_rc ladderd_host_run_stage(const struct ladderd_plugin *plugin,
    const cJSON *args, cJSON *ctx, const char *rung, int threads);
int ladderd_host_set_state(cJSON *ctx, const char *state);
const char *ladderd_host_rc_name(enum ladderd_rc rc);
/* Lower this process's priority by `niceness` at its first progress. */
void ladderd_host_yield_when_working(int niceness);
void ladderd_host_error_text(const cJSON *ctx, char *buf, size_t size);

#endif
