#!/bin/sh
# The daemon's webhooks end to end: a receiver on 127.0.0.1 verifies every
# signature and sees seq in order up to complete: true; with the receiver
# down during a job and a daemon restart in between, it still gets every
# event (duplicates only with the same webhook-id).
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT
SECRET="whsec_$(printf 'ladderd test secret 0123456789' | base64)"

start_receiver receiver --quiet --secret "$SECRET" || bail_out "receiver"
RECV=$SERVER_PID
write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
notify = { webhook = \"http://127.0.0.1:$PORT/hook\"; secret = \"$SECRET\"; timeout = 2; };
profiles = { $(quick_profile "" 50 notify) };"
export LADDERD_WEBHOOK_BACKOFF_MS=200
start_daemon "$T/ladderd.conf"

# received_ids ID: the seqs the receiver accepted for task ID, sorted, unique.
received_ids() {
	"$PY" - "$T/receiver.jsonl" "$1" <<'PY'
import json, sys
seqs = []
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r["body"]["task_id"] == sys.argv[2]:
            assert r["id"] == "%s-%d" % (sys.argv[2], r["body"]["seq"]), r
            seqs.append(r["body"]["seq"])
except FileNotFoundError:
    pass
print(" ".join(map(str, seqs)))
PY
}
all_received() { # ID
	n=$(json "$T/status/$1/status.json" 'd["seq"]' 2>/dev/null) || return 1
	[ "$(received_ids "$1" | tr ' ' '\n' | sort -n -u | tr '\n' ' ')" = "$(seq 1 "$n" | tr '\n' ' ')" ]
}

echo one >"$T/a.mp4"
cp "$T/a.mp4" "$T/ingest/a.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^a-'"
id=$(task_ids_for a)
wait_state "$id" complete 20
wait_for 20 all_received "$id"
ok "every event of the task reached the receiver" all_received "$id"
got=$(received_ids "$id")
n=$(json "$T/status/$id/status.json" 'd["seq"]')
is "$got" "$(seq 1 "$n" | tr '\n' ' ' | sed 's/ $//')" "in seq order, each once"
# (--quiet logs refusals only; '401' would also match the port it prints)
is "$(grep -c 'rejected' "$T/receiver.log")" 0 "no signature was refused"
last=$("$PY" -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(json.dumps([r[-1]["body"]["state"], r[-1]["body"]["complete"]]))' "$T/receiver.jsonl")
is "$last" '["complete", true]' "the last event is complete: true"

# Receiver down during a job, and a daemon restart before it is back.
stop_server "$RECV"
echo two >"$T/b.mp4"
cp "$T/b.mp4" "$T/ingest/b.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^b-'"
id2=$(task_ids_for b)
wait_state "$id2" complete 20
is "$(received_ids "$id2")" "" "nothing reached the receiver while it was down"
ok "the events wait in the outbox" sh -c "ls '$T/spool/outbox' | grep -q '^$id2\\.'"
stop_daemon
is "$?" 0 "the daemon stops with undelivered events"
start_receiver receiver --quiet --secret "$SECRET" --port "$PORT" ||
	bail_out "receiver"
start_daemon "$T/ladderd.conf" "$T/daemon2.log"
wait_for 30 all_received "$id2"
ok "after the restart every event of the second task arrives" all_received "$id2"
dups=$("$PY" - "$T/receiver.jsonl" "$id2" <<'PY'
import json, sys
ids = [json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["body"]["task_id"] == sys.argv[2]]
print(len(ids) - len(set(ids)))
PY
)
ok "duplicates, if any, carry the same webhook-id ($dups)" test "$dups" -ge 0
is "$(ls "$T/spool/outbox" | grep -c '\.json$')" 0 "the outbox is empty"
stop_daemon
done_testing
