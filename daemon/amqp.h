/*
 * amqp.h - the AMQP 0-9-1 transport of the outbox (transport.h), for
 * RabbitMQ and the seed's consumers of the queue "transcode-result":
 *
 *   notify.amqp = { url = "amqp://user:pass@host:5672/vhost";
 *                   exchange = ""; routing_key = "transcode-result"; };
 *
 * Each event is published to `exchange` with `routing_key` ("{task_id}"
 * in it is replaced by the task id) as a persistent message (delivery
 * mode 2), content_type application/json, message_id = the webhook-id
 * ("<task>-<seq>"), timestamp = when the event was written, mandatory. An
 * event is delivered only when the broker confirmed it (publisher
 * confirms) and did not return it as unroutable; a nack or a return is a
 * retry. amqps:// uses TLS (peer and host name verified).
 *
 * One connection, one channel. A failed connect, a refused login, a
 * missing exchange, a lost connection: logged, kept in the state
 * describe() reports (_notify.json, _daemon.json), and tried again with
 * backoff (the first delay is the outbox's, doubled up to 60 s); the
 * publishes that were waiting for a confirm are retried by the outbox.
 */
#ifndef LADDERD_AMQP_H
#define LADDERD_AMQP_H

#include <stdint.h>

#include "conf.h"
#include "transport.h"

/*
 * An AMQP transport for conf's notify.amqp (borrowed); it connects in the
 * background. Owned by the caller, freed with ->free(). Returns 0, or
 * -EINVAL when the URL does not parse (logged), -ENOMEM.
 */
int ladderd_amqp_new(const struct ladderd_conf *conf, uint64_t backoff_us,
    struct ladderd_transport *ret);

#endif
