/*
 * webhook.h - the notify worker (`ladderd notify`), which delivers the
 * webhook outbox (README "Status format"). status.c writes one file per
 * event and destination into <spool>/outbox/ (atomically: temp name, then
 * rename): <task_id>.<seq as %010ld>.json for the operator's webhook,
 * <task_id>@manifest.<seq>.json for a manifest's own webhook:
 *
 *   { "url": "https://...", "dest": "operator" | "manifest",
 *     "id": "<task_id>-<seq>", "task_id": "...", "seq": N,
 *     "created": <unix seconds>, "body": "<exact bytes to POST>" }
 *
 * The worker POSTs "body" with the Standard Webhooks headers webhook-id,
 * webhook-timestamp and, with notify.secret set, webhook-signature
 * ("v1," + base64 HMAC-SHA256 of "id.timestamp.body"; a secret "whsec_X"
 * means the key is base64-decoded X, otherwise the secret's raw bytes).
 * A 2xx answer removes the entry; anything else is retried with exponential
 * backoff (LADDERD_WEBHOOK_BACKOFF_MS, default 1000, doubled per failure,
 * at most 5 minutes, +-20% jitter). Entries older than notify.max_age go to
 * <spool>/outbox/dead/. Per task, events are sent in seq order.
 */
#ifndef LADDERD_WEBHOOK_H
#define LADDERD_WEBHOOK_H

#include "conf.h"

/*
 * Run the notify worker until SIGTERM or SIGINT; SIGHUP re-reads
 * `conf_file` (the command line's rule, ladderd_conf_load_cli(): NULL is
 * the default file or the built-in defaults). The three signals are
 * blocked and read from a signalfd for the duration of the call. `conf`
 * is borrowed. The caller has called log_init(). Returns 0 after a
 * signal, a negative errno when the worker cannot start (outbox not
 * creatable or not watchable, undecodable whsec_ secret, libcurl setup);
 * the reason is logged.
 */
int ladderd_webhook_worker(const struct ladderd_conf *conf,
    const char *conf_file);

#endif
