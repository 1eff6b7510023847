#!/bin/sh
# t0442-amqp-notify.sh - the AMQP transport against a real RabbitMQ
# started here (tests/tools/rabbitmq.sh, its own folder and free ports) and
# a consumer of the queue "transcode-result", as the seed's consumers read
# it (tests/tools/amqp_consumer.py, python3-pika):
#  * every event of a task, in seq order, each JSON with quality,
#    main_task_id and complete, the last complete: true; persistent,
#    application/json, message_id = the webhook-id, a timestamp;
#  * a refused manifest's failed event reaches the webhook AND the queue;
#  * the broker stopped while a task runs and started again: every event
#    still arrives (duplicates only with the same message_id);
#  * a missing exchange: retried, the reason in the log and _daemon.json;
#    a daemon restart with those events undelivered, the exchange created:
#    they arrive, with "{task_id}" replaced in the routing key.
. "$(dirname "$0")/lib.sh"
R="$T/rabbit"
CONSUMER=
cleanup_all() {
	[ -n "$CONSUMER" ] && kill "$CONSUMER" 2>/dev/null
	kill_all
	sh "$LADDERD_SRC/tests/tools/rabbitmq.sh" stop "$R" 2>/dev/null
	sh "$LADDERD_SRC/tests/tools/rabbitmq.sh" stop-epmd "$R" 2>/dev/null
	_cleanup
}
trap cleanup_all EXIT
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] ||
	skip_all "rabbitmq-server is not installed (tests/install-deps.sh)"
# Debian's python3-pika is for Debian's python3, whatever $PY is.
PIKA_PY=
for p in "$PY" /usr/bin/python3; do
	"$p" -c 'import pika' 2>/dev/null && { PIKA_PY=$p; break; }
done
[ -n "$PIKA_PY" ] ||
	skip_all "python3-pika is not installed (tests/install-deps.sh)"
mkdir -p "$R"
rmq() { sh "$LADDERD_SRC/tests/tools/rabbitmq.sh" "$@"; }
rmq start "$R" || { echo "# $(cat "$R/ctl.out")"; skip_all "cannot start rabbitmq-server here"; }
APORT=$(cat "$R/amqp_port")
"$PIKA_PY" "$LADDERD_SRC/tests/tools/amqp_consumer.py" --port "$APORT" \
	--out "$T/queue.ndjson" --ready "$T/consumer.ready" --lifetime 300 \
	2>>"$T/consumer.log" &
CONSUMER=$!
wait_for 15 test -s "$T/consumer.ready"

start_receiver hook --quiet || bail_out "no webhook receiver"
HPORT=$PORT

conf() { # EXCHANGE ROUTING_KEY
	write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
notify = { webhook = \"http://127.0.0.1:$HPORT/hook\"; timeout = 2;
  amqp = { url = \"amqp://guest:guest@127.0.0.1:$APORT\"; exchange = \"$1\"; routing_key = \"$2\"; }; };
profiles = {
  quick = {
    ladder = ( { name = \"hi\"; height = 360; bitrate = 500; }, { name = \"lo\"; height = 240; bitrate = 300; } );
    workflow = { pre = (); rendition = ( { stage = \"t_record\"; args = { record_sleep_ms = \$SLEEP; }; }, \"notify\" );
                 post = ( \"t_record\", \"publish\" ); };
  };
};"
}
export LADDERD_WEBHOOK_BACKOFF_MS=200
# check ID [ROUTING_KEY]: the queue holds every event of ID, in seq order
# once duplicates (same message_id) are dropped, each as the seed's
# consumers expect; prints what is wrong, nothing if all is well.
check() {
	"$PY" - "$T/queue.ndjson" "$T/status/$1/status.json" "$1" "${2:-transcode-result}" <<'PY'
import json, sys
qfile, sfile, tid, rk = sys.argv[1:5]
try:
    n = json.load(open(sfile))["seq"]
    msgs = [json.loads(l) for l in open(qfile)]
except (OSError, ValueError, KeyError) as e:
    print("not yet: %s" % e); sys.exit(0)
msgs = [m for m in msgs if m["body"] and m["body"].get("task_id") == tid]
seen, order = {}, []
for m in msgs:
    b = m["body"]
    if m["message_id"] in seen:
        if seen[m["message_id"]] != b:
            print("duplicate %s differs" % m["message_id"])
        continue
    seen[m["message_id"]] = b
    order.append(b["seq"])
    for k in ("quality", "main_task_id", "complete", "state", "seq"):
        if k not in b:
            print("seq %s has no %s" % (b.get("seq"), k))
    if m["message_id"] != "%s-%d" % (tid, b["seq"]):
        print("message_id %s for seq %d" % (m["message_id"], b["seq"]))
    if m["content_type"] != "application/json" or m["delivery_mode"] != 2:
        print("seq %d: %s, delivery mode %s" % (b["seq"], m["content_type"], m["delivery_mode"]))
    if not m["timestamp"]:
        print("seq %d: no timestamp" % b["seq"])
    if m["routing_key"] != rk:
        print("seq %d: routing key %s" % (b["seq"], m["routing_key"]))
if order != list(range(1, n + 1)):
    print("seqs %s, want 1..%d" % (order, n))
PY
}
delivered() { [ -z "$(check "$@")" ]; }

# --- 1. a task, end to end ------------------------------------------------
conf "" "transcode-result"
sed -i 's/\$SLEEP/50/' "$T/ladderd.conf"
start_daemon "$T/ladderd.conf"
echo one >"$T/ingest/a.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^a-'"
a=$(task_ids_for a)
wait_state "$a" complete 20
wait_for 20 delivered "$a"
is "$(check "$a")" "" "the queue got every event of the task, in seq order, as the seed's consumers read them"
last=$("$PY" -c 'import json,sys; m=[json.loads(l)["body"] for l in open(sys.argv[1])]; m=[b for b in m if b["task_id"]==sys.argv[2]]; print(m[-1]["state"], m[-1]["complete"])' "$T/queue.ndjson" "$a")
is "$last" "complete True" "the last message is complete: true"
like "$(cat "$T/daemon.log")" "amqp: connected to 127.0.0.1:$APORT//, publishing to exchange '' with routing key 'transcode-result'" \
	"the worker says where it publishes (never the password)"
ok "no password in the log" sh -c "! grep -q 'guest:guest' '$T/daemon.log'"

# --- 2. a refused manifest reaches both transports --------------------------
printf '{"task_id": "refused-one", "source": "x.mov", "colour": "red"}' >"$T/ingest/bad.json"
wait_for 10 sh -c "ls '$T/status' | grep -q '^bad-'"
bad=$(task_ids_for bad)
wait_state "$bad" failed 10
wait_for 10 sh -c "grep -q '\"task_id\": \"$bad\"' '$T/hook.jsonl'"
ok "the refusal's failed event reached the webhook" \
	sh -c "grep '\"task_id\": \"$bad\"' '$T/hook.jsonl' | grep -q '\"failed\"'"
wait_for 10 delivered "$bad"
is "$(check "$bad")" "" "and the queue"
like "$(json "$T/status/$bad/status.json" 'd["error"]["message"]')" "colour" "(refused for its unknown key)"

# --- 3. the broker goes away while a task runs --------------------------------
stop_daemon
sed -i 's/record_sleep_ms = 50/record_sleep_ms = 1500/' "$T/ladderd.conf"
start_daemon "$T/ladderd.conf"
echo two >"$T/ingest/b.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^b-'"
b=$(task_ids_for b)
wait_for 10 sh -c "grep -q '\"message_id\": \"$b-1\"' '$T/queue.ndjson'"
ok "the first event of the next task is in the queue" \
	grep -q "\"message_id\": \"$b-1\"" "$T/queue.ndjson"
rmq stop "$R"
wait_state "$b" complete 30
is "$(state_of "$b")" complete "the task ran to its end with the broker down"
wait_for 10 grep -q "amqp: .*lost\|amqp: 127.0.0.1:$APORT//: cannot connect" "$T/daemon.log"
like "$(cat "$T/daemon.log")" "amqp: (connection to 127.0.0.1:$APORT// lost|127.0.0.1:$APORT//: cannot connect)" \
	"the lost broker is logged"
# The worker's counters reach _daemon.json on its next report: wait for the
# AMQP transport's own entry to say so (another transport's last_error is
# no signal).
amqp_down() {
	json "$T/status/_daemon.json" 'd["notify"]["transports"]["amqp"]["connected"]' | grep -qx false
}
wait_for 30 amqp_down
like "$(json "$T/status/_daemon.json" 'd["notify"]["transports"]["amqp"]')" '"connected": false' \
	"_daemon.json says the broker is not connected"
like "$(json "$T/status/_daemon.json" 'd["notify"]["transports"]["amqp"]["last_error"]')" "." \
	"... and why"
rmq start "$R"
wait_for 40 delivered "$b"
is "$(check "$b")" "" "broker back: every event of the task arrived, none missing"
like "$(cat "$T/daemon.log")" "amqp: connected to .*" "reconnected"

# --- 4. a missing exchange, then a daemon restart --------------------------
stop_daemon
conf "ladderd-x" "task.{task_id}"
sed -i 's/\$SLEEP/50/' "$T/ladderd.conf"
start_daemon "$T/ladderd.conf"
echo three >"$T/ingest/c.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^c-'"
c=$(task_ids_for c)
wait_state "$c" complete 20
wait_for 10 grep -q "exchange 'ladderd-x'.*404" "$T/daemon.log"
like "$(cat "$T/daemon.log")" "amqp: 127.0.0.1:$APORT//: exchange 'ladderd-x': server closed the channel: 404 NOT_FOUND" \
	"a missing exchange is logged with the broker's reason"
wait_for 10 grep -q '"last_error":.*404' "$T/status/_daemon.json"
like "$(json "$T/status/_daemon.json" 'd["notify"]["transports"]["amqp"]["last_error"]')" "404 NOT_FOUND" \
	"... and in _daemon.json"
stop_daemon
ok "undelivered AMQP entries wait in the outbox over the restart" \
	sh -c "ls '$T/spool/outbox' | grep -q '^$c@amqp\\.'"
"$PIKA_PY" - "$APORT" <<'PY'
import pika, sys
c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", int(sys.argv[1])))
ch = c.channel()
ch.exchange_declare("ladderd-x", "topic", durable=True)
ch.queue_bind("transcode-result", "ladderd-x", routing_key="task.#")
c.close()
PY
start_daemon "$T/ladderd.conf"
wait_for 20 delivered "$c" "task.$c"
is "$(check "$c" "task.$c")" "" "after the restart every event arrived, routing key task.<task_id>"
wait_for 10 sh -c "! ls '$T/spool/outbox' | grep -q '@amqp\\.'"
ok "the outbox holds no AMQP entry any more" sh -c "! ls '$T/spool/outbox' | grep -q '@amqp\\.'"
ok "nothing was given up" sh -c "! ls '$T/spool/outbox/dead' | grep -q ."
stop_daemon
done_testing
