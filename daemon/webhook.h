/*
 * webhook.h - the Standard Webhooks transport of the outbox (transport.h):
 * one POST of an event's exact body with the headers webhook-id,
 * webhook-timestamp and, with a secret, webhook-signature ("v1," + base64
 * HMAC-SHA256 of "id.timestamp.body"; a secret "whsec_X" means the key is
 * base64-decoded X, otherwise the secret's raw bytes). 2xx: delivered;
 * refused, timed out, 5xx, 429: retry later; a URL or host the config does
 * not allow: give up.
 *
 * The operator's queue goes to notify.webhook as configured now (the
 * entry's URL only when none is set), signed with notify.secret. A
 * manifest's queue goes to the entry's URL only when
 * notify.allow_manifest_webhook allows it, the host is in
 * notify.manifest_webhook_hosts and the address policy
 * (notify.allow_networks) permits it, signed only with
 * notify.manifest_webhook_secret. Transfers run concurrently
 * (webhook_send.h: limits and a backoff per destination).
 */
#ifndef LADDERD_WEBHOOK_H
#define LADDERD_WEBHOOK_H

#include <stdint.h>

#include "conf.h"
#include "transport.h"

/*
 * A webhook transport from `conf` (borrowed); `backoff_us` is the first
 * backoff of a failing destination. Owned by the caller, who frees it
 * with ->free(). Returns 0 or a negative errno (logged: undecodable whsec_
 * secret, libcurl setup).
 */
int ladderd_webhook_new(const struct ladderd_conf *conf, uint64_t backoff_us,
    struct ladderd_transport *ret);

#endif
