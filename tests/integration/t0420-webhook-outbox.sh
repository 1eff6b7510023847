#!/bin/sh
# t0420-webhook-outbox.sh - the notify worker (`ladderd notify`) against
# contrib/webhook-receiver/receiver.py on 127.0.0.1. Outbox entries are
# written by hand, as status.c writes them (temp name + rename). Checks:
# entries present at start and entries arriving later are all delivered,
# signed (the receiver verifies every signature), in seq order per task;
# a receiver answering 503 gets the events after retries; with the
# receiver down entries stay in the outbox, SIGTERM stops the worker with
# status 0 in bounded time, and a restarted worker delivers them; an entry
# older than notify.max_age goes to outbox/dead/ and the next one of its
# task still goes out; temporary names are left alone.
. "$(dirname "$0")/lib.sh"

require python3 ladderd

RECEIVER="$LADDERD_SRC/contrib/webhook-receiver/receiver.py"
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
OB="$T/spool/outbox"
# Retries after 0.1 s, 0.2 s, 0.4 s... so the test stays short.
LADDERD_WEBHOOK_BACKOFF_MS=100
export LADDERD_WEBHOOK_BACKOFF_MS

WORKER_PID=
_stop_worker() {
	if [ -n "$WORKER_PID" ]; then
		kill "$WORKER_PID" 2>/dev/null
		wait "$WORKER_PID" 2>/dev/null
		WORKER_PID=
	fi
}
# lib.sh installed `trap _cleanup EXIT`: stop our processes first.
trap '_stop_worker; _cleanup' EXIT

# recv NAME [ARGS...]: a receiver checking $SECRET, recording into
# $T/NAME.jsonl, on the port the first one picked (put's URL stays valid).
recv() {
	local name=$1
	shift
	: >>"$T/$name.jsonl"
	start_receiver "$name" --secret "$SECRET" --port "${PORT:-0}" "$@" ||
		bail_out "receiver.py did not start: $(cat "$T/$name.log")"
	RECV_PID=$SERVER_PID
}
start_worker() {
	"$LADDERD" notify -c "$T/ladderd.conf" >>"$T/worker.log" 2>&1 &
	WORKER_PID=$!
}
# put TASK FROM TO [AGE]: outbox entries TASK seq FROM..TO, as status.c
# writes them, "created" AGE seconds ago.
put() {
	"$PY" - "$OB" "http://127.0.0.1:$PORT/hook" "$@" <<'EOF'
import json, os, sys, time
d, url, task, a, b = sys.argv[1:6]
age = int(sys.argv[6]) if len(sys.argv) > 6 else 0
for seq in range(int(a), int(b) + 1):
    body = json.dumps({"task_id": task, "main_task_id": task, "seq": seq,
                       "state": "transcoding", "progress": seq / 10},
                      separators=(",", ":"))
    entry = {"url": url, "id": "%s-%d" % (task, seq), "task_id": task,
             "seq": seq, "created": int(time.time()) - age, "body": body}
    final = "%s/%s.%010d.json" % (d, task, seq)
    tmp = "%s.tmp.%d" % (final, os.getpid())
    with open(tmp, "w") as f:
        json.dump(entry, f)
    os.rename(tmp, final)
EOF
}
# pending: the number of entries (names ending in .json) in the outbox.
pending() {
	_n=0
	for _f in "$OB"/*.json; do
		[ -f "$_f" ] && _n=$((_n + 1))
	done
	echo "$_n"
}
outbox_empty() {
	[ "$(pending)" = 0 ]
}
# seqs FILE TASK: the seqs of TASK in arrival order, checking that each
# recorded webhook-id is "<task>-<seq>" of its body.
seqs() {
	"$PY" - "$1" "$2" <<'EOF'
import json, sys
out = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = r["body"]
    if b.get("task_id") != sys.argv[2]:
        continue
    if r["id"] != "%s-%d" % (b["task_id"], b["seq"]):
        print("id %s does not match body seq %d" % (r["id"], b["seq"]))
    out.append(str(b["seq"]))
print(" ".join(out))
EOF
}

write_conf "$T/ladderd.conf" \
	"notify = { secret = \"$SECRET\"; timeout = 2; max_age = 3600; };"
mkdir -p "$OB"

# --- delivery: entries of an earlier run, then new ones -----------------
recv r1
put t1 1 5
put t2 1 3
# A writer's temporary file: not an entry, never touched.
echo '{"partial' >"$OB/t9.0000000001.json.tmp.4242"
start_worker
put t2 4 5
ok "all entries delivered, outbox empty" wait_for 15 outbox_empty
is "$(wc -l <"$T/r1.jsonl" | tr -d ' ')" 10 \
	"10 events recorded (signatures verified)"
is "$(seqs "$T/r1.jsonl" t1)" "1 2 3 4 5" "task t1 in seq order"
is "$(seqs "$T/r1.jsonl" t2)" "1 2 3 4 5" \
	"task t2 in seq order, late entries too"
is "$(grep -c 'rejected' "$T/r1.log")" 0 "receiver rejected no signature"
ok "temporary name left alone" test -f "$OB/t9.0000000001.json.tmp.4242"

# The receiver does check: a wrong signature and a stale timestamp get 401.
# sign TS: a good signature of probe's request at time TS.
sign() {
	# no __pycache__ in the source tree
	PYTHONDONTWRITEBYTECODE=1 "$PY" - "$(dirname "$RECEIVER")" "$SECRET" "$1" <<'EOF'
import base64, hashlib, hmac, sys
sys.path.insert(0, sys.argv[1])
import receiver
key = receiver.signing_key(sys.argv[2])
msg = b"x-1." + sys.argv[3].encode() + b'.{"seq":1}'
print("v1," + base64.b64encode(
    hmac.new(key, msg, hashlib.sha256).digest()).decode())
EOF
}
# probe SIGNATURE TIMESTAMP: POST a request by hand, print the HTTP status.
probe() {
	"$PY" - "http://127.0.0.1:$PORT/hook" "$1" "$2" <<'EOF'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], data=b'{"seq":1}', headers={
    "Content-Type": "application/json", "webhook-id": "x-1",
    "webhook-timestamp": sys.argv[3], "webhook-signature": sys.argv[2]})
try:
    print(urllib.request.urlopen(req, timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
}
now=$(date +%s)
old=$((now - 600))
is "$(probe "$(sign "$now")" "$now")" 204 "receiver: good signature accepted"
is "$(probe 'v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' "$now")" 401 \
	"receiver: bad signature refused"
is "$(probe "$(sign "$old")" "$old")" 401 \
	"receiver: good signature with a 10-minute-old timestamp refused"
stop_server "$RECV_PID"

# --- a receiver that fails first: retries ------------------------------
recv r2 --fail-first 3
put t3 1 3
ok "503 x3: delivered after retries" wait_for 15 outbox_empty
is "$(seqs "$T/r2.jsonl" t3)" "1 2 3" "503 x3: task t3 in seq order"
fail503='task=t3 seq=1: webhook delivery failed: HTTP 503'
is "$(grep -c "$fail503" "$T/worker.log")" 3 \
	"503 x3: one log line per failure"
like "$(cat "$T/worker.log")" "$fail503; attempt 1, next in [0-9.]+ s" \
	"503: the log line says the reason and the next attempt"
stop_server "$RECV_PID"

# --- receiver down: kept, stop, restart, delivered -----------------------
put t4 1 2
ok "receiver down: failures logged" wait_for 10 \
	grep -q 'task=t4 seq=1: webhook delivery failed' "$T/worker.log"
# Not a sleep: the worker has come back to the entry and failed again.
ok "receiver down: retried" wait_for 10 \
	grep -q 'task=t4 seq=1: webhook delivery failed: .*; attempt 2,' "$T/worker.log"
is "$(pending)" 2 "receiver down: both entries still in the outbox"
t0=$(date +%s%N)
kill -TERM "$WORKER_PID"
wait "$WORKER_PID"
rc=$?
t1=$(date +%s%N)
WORKER_PID=
is "$rc" 0 "SIGTERM: worker exits 0"
limit=$(awk -v m="$MULT" 'BEGIN { printf "%d", 3000 * m }')
ok "SIGTERM: worker exits within 3 s" test $(((t1 - t0) / 1000000)) -lt "$limit"
is "$(pending)" 2 "after stop: entries still in the outbox"
like "$(cat "$T/worker.log")" 'stopping on signal 15' "SIGTERM: logged"
recv r3
start_worker
ok "restart: delivered" wait_for 15 outbox_empty
is "$(seqs "$T/r3.jsonl" t4)" "1 2" "restart: task t4 in seq order"

# --- too old: dead letter, and its task goes on ----------------------------
put t5 1 1 100000
put t5 2 2
ok "old entry moved to outbox/dead/" wait_for 10 \
	test -f "$OB/dead/t5.0000000001.json"
ok "next entry of the task delivered" wait_for 10 outbox_empty
is "$(seqs "$T/r3.jsonl" t5)" "2" "old entry not sent, the next one sent"
like "$(cat "$T/worker.log")" "t5.0000000001.json.*older than notify.max_age" \
	"dead letter logged with the reason"

ok "no secret in the log" sh -c "! grep -q 'MfKQ9r8G' '$T/worker.log'"
kill -TERM "$WORKER_PID"
wait "$WORKER_PID"
is "$?" 0 "final SIGTERM: exit 0"
WORKER_PID=
done_testing
