#!/usr/bin/env python3
"""tests/tools/amqp_consumer.py - what the seed's consumers do: read the
queue (durable, declared here) and record every message, one JSON line
each: message_id, content_type, delivery_mode, timestamp, routing_key,
body (parsed). Reconnects when the broker goes away (a test restarts it),
until --lifetime seconds have passed. Uses Debian's python3-pika."""
import argparse
import json
import os
import sys
import time

import pika

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--queue", default="transcode-result")
ap.add_argument("--exchange", default="")
ap.add_argument("--bind", default="", help="routing key to bind with")
ap.add_argument("--out", required=True)
ap.add_argument("--ready", help="file written once consuming")
ap.add_argument("--lifetime", type=float, default=120)
a = ap.parse_args()
end = time.monotonic() + a.lifetime
out = open(a.out, "a", buffering=1)


def on_message(ch, method, props, body):
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    out.write(json.dumps({
        "message_id": props.message_id,
        "content_type": props.content_type,
        "delivery_mode": props.delivery_mode,
        "timestamp": props.timestamp,
        "routing_key": method.routing_key,
        "redelivered": method.redelivered,
        "body": parsed,
    }) + "\n")
    ch.basic_ack(method.delivery_tag)


while time.monotonic() < end:
    try:
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=a.port, connection_attempts=1,
            socket_timeout=2, blocked_connection_timeout=5))
        ch = conn.channel()
        ch.queue_declare(a.queue, durable=True)
        if a.exchange:
            ch.queue_bind(a.queue, a.exchange, routing_key=a.bind)
        ch.basic_consume(a.queue, on_message)
        if a.ready:
            with open(a.ready + ".tmp", "w") as f:
                f.write("ok\n")
            os.rename(a.ready + ".tmp", a.ready)
        while time.monotonic() < end:
            conn.process_data_events(time_limit=0.2)
        conn.close()
    except (pika.exceptions.AMQPError, OSError) as e:
        print("consumer: %s, reconnecting" % type(e).__name__,
              file=sys.stderr)
        time.sleep(0.2)
