/*
 * outbox.h - the notify worker (`ladderd notify`), which delivers the
 * outbox (README "Status format"). status.c writes one file per event and
 * transport queue into <spool>/outbox/ (atomically: temp name, then
 * rename): <task_id>.<seq as %010ld>.json for the operator's webhook,
 * <task_id>@manifest.<seq>.json for a manifest's own webhook,
 * <task_id>@amqp.<seq>.json for notify.amqp:
 *
 *   { "url": "https://..." | "", "dest": "operator" | "manifest" | "amqp",
 *     "id": "<task_id>-<seq>", "task_id": "...", "seq": N,
 *     "created": <unix seconds>, "created_ms": <unix ms>,
 *     "body": "<exact event bytes>" }
 *
 * Each queue is delivered in seq order by its transport (transport.h:
 * webhook.h, amqp.h). Delivered entries are removed; a failed attempt is
 * retried with exponential backoff (LADDERD_WEBHOOK_BACKOFF_MS, default
 * 1000, doubled per failure, at most 5 minutes, +-20% jitter). Entries
 * older than notify.max_age, and those a transport gives up on, go to
 * <spool>/outbox/dead/. The worker keeps <status>/_notify.json (backlog,
 * deliveries and failures per transport, the AMQP connection's state).
 */
#ifndef LADDERD_OUTBOX_H
#define LADDERD_OUTBOX_H

#include "conf.h"

/*
 * Run the notify worker until SIGTERM or SIGINT; SIGHUP re-reads
 * `conf_file` (the command line's rule, ladderd_conf_load_cli(): NULL is
 * the default file or the built-in defaults). The three signals are
 * blocked and read from a signalfd for the duration of the call. `conf`
 * is borrowed. The caller has called log_init(). Returns 0 after a
 * signal, a negative errno when the worker cannot start (outbox not
 * creatable or not watchable, a transport cannot be set up); the reason
 * is logged.
 */
int ladderd_outbox_worker(const struct ladderd_conf *conf,
    const char *conf_file);

#endif
