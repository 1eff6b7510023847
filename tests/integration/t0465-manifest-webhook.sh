#!/bin/sh
# t0465-manifest-webhook.sh - a manifest's own webhook is no signing oracle
# (issue 9 finding 4). By default a manifest naming a webhook is refused.
# When allowed: the host must be listed (notify.manifest_webhook_hosts),
# the address allowed (notify.allow_networks), its events are signed with
# notify.manifest_webhook_secret and never with the operator's secret (a
# request captured there is refused by the operator's receiver on
# replay), and the operator's webhook still gets every event of the task.
. "$(dirname "$0")/lib.sh"
require python3
RA= RB=
trap '[ -n "$RA" ] && kill "$RA" 2>/dev/null; [ -n "$RB" ] && kill "$RB" 2>/dev/null; kill_all; _cleanup' EXIT
OPS="whsec_$(printf 'the operator secret 0123456' | base64)"
MAN="whsec_$(printf 'the manifest secret 6543210' | base64)"

start_receiver() { # NAME SECRET
	rm -f "$T/$1.port"
	"$PY" "$LADDERD_SRC/contrib/webhook-receiver/receiver.py" \
		--port-file "$T/$1.port" --secret "$2" --out "$T/$1.jsonl" \
		--lifetime 120 >>"$T/$1.log" 2>&1 &
	RPID=$!
	wait_for 10 test -s "$T/$1.port" || { echo "Bail out! receiver"; exit 1; }
}
start_receiver op "$OPS"; RA=$RPID; PA=$(cat "$T/op.port")
start_receiver man "$MAN"; RB=$RPID; PB=$(cat "$T/man.port")

conf() { # EXTRA_NOTIFY_SETTINGS
	write_conf "$T/ladderd.conf.tmp" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
notify = { webhook = \"http://127.0.0.1:$PA/hook\"; secret = \"$OPS\"; timeout = 2; $1 };
profiles = {
  quick = {
    ladder = ( { name = \"only\"; height = 360; bitrate = 500; } );
    workflow = { pre = (); rendition = ( { stage = \"t_record\"; args = { record_sleep_ms = 10; }; } );
                 post = ( \"t_record\", \"publish\" ); };
  };
};"
	mv "$T/ladderd.conf.tmp" "$T/ladderd.conf"
}
drop() { # NAME TASK_ID WEBHOOK
	mkdir -p "$T/ingest/media"
	echo "$2" >"$T/ingest/media/$2.mov"
	printf '{"task_id": "%s", "source": "media/%s.mov", "webhook": "%s"}' \
		"$2" "$2" "$3" >"$T/$1.tmp"
	mv "$T/$1.tmp" "$T/ingest/$1"
}
received() { # FILE ID: the seqs accepted for task ID, sorted, unique
	"$PY" - "$1" "$2" <<'PY'
import json, sys
seqs = set()
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r["body"]["task_id"] == sys.argv[2]:
            seqs.add(r["body"]["seq"])
except FileNotFoundError:
    pass
print(" ".join(map(str, sorted(seqs))))
PY
}
all_delivered() { # FILE ID
	n=$(json "$T/status/$2/status.json" 'd["seq"]' 2>/dev/null) || return 1
	[ "$(received "$1" "$2")" = "$(seq -s ' ' 1 "$n")" ]
}
export LADDERD_WEBHOOK_BACKOFF_MS=200

# --- the default: refused --------------------------------------------------
conf ""
start_daemon "$T/ladderd.conf"
# refused NAME: the id a refused drop NAME is filed under (derived from
# the file's name), once its failed status is there.
refused() {
	wait_for 10 sh -c "ls '$T'/failed/*/'$1' >/dev/null 2>&1" || return 1
	_id=$(basename "$(dirname "$(ls "$T"/failed/*/"$1" | head -n 1)")")
	wait_state "$_id" failed 10
	echo "$_id"
}
drop d.json deflt "http://127.0.0.1:$PB/hook"
rid=$(refused d.json)
is "$(state_of "$rid")" failed "by default a manifest naming a webhook is refused"
like "$(json "$T/status/$rid/status.json" 'd["error"]["message"]')" \
	"does not allow a manifest to set a webhook" "with the reason"
wait_for 10 all_delivered "$T/op.jsonl" "$rid"
ok "the operator hears of the refusal" all_delivered "$T/op.jsonl" "$rid"
is "$(received "$T/man.jsonl" "$rid")" "" "the manifest's URL hears nothing"

# --- allowed, listed hosts, the address opened for 127.0.0.1 only ---------
conf "allow_manifest_webhook = true; manifest_webhook_hosts = [ \"127.0.0.1\", \"127.0.0.2\" ];
	manifest_webhook_secret = \"$MAN\"; allow_networks = [ \"127.0.0.1/32\" ];"
wait_for 10 sh -c "[ \$(grep -c 'notify worker: config reloaded' '$T/daemon.log') -ge 1 ]"
drop m.json good "http://127.0.0.1:$PB/hook"
wait_state good complete 20
wait_for 20 all_delivered "$T/man.jsonl" good
ok "the manifest's webhook gets every event, signed with manifest_webhook_secret" \
	all_delivered "$T/man.jsonl" good
wait_for 20 all_delivered "$T/op.jsonl" good
ok "the operator's webhook still gets every event of that task" \
	all_delivered "$T/op.jsonl" good
is "$(grep -c 'rejected' "$T/man.log")" 0 "no signature was refused at the manifest's receiver"

# Replay what the manifest's receiver got to the operator's receiver.
replay=$("$PY" - "$T/man.jsonl" "http://127.0.0.1:$PA/hook" <<'PY'
import json, sys, time, urllib.request, urllib.error
r = json.loads(open(sys.argv[1]).readline())
body = json.dumps(r["body"]).encode()
req = urllib.request.Request(sys.argv[2], data=body, headers={
    "Content-Type": "application/json", "webhook-id": r["id"],
    "webhook-timestamp": r["timestamp"],
    "webhook-signature": r["signature"] or ""})
try:
    print(urllib.request.urlopen(req, timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
)
is "$replay" 401 "a request captured at the manifest's URL is refused by the operator's receiver"

# Listed host, but an address the policy refuses: buried, the operator
# still gets everything.
drop p.json policy "http://127.0.0.2:$PB/hook"
wait_state policy complete 20
wait_for 20 all_delivered "$T/op.jsonl" policy
ok "operator: every event of a task whose webhook is refused" all_delivered "$T/op.jsonl" policy
wait_for 10 sh -c "ls '$T/spool/outbox/dead' | grep -q '^policy@manifest\\.'"
ok "the manifest's events are given up on (outbox/dead)" \
	sh -c "ls '$T/spool/outbox/dead' | grep -q '^policy@manifest\\.'"
like "$(cat "$T/daemon.log")" "task=policy seq=1 \\(manifest webhook\\).*refused by notify.allow_networks" \
	"the operator's log says the address was refused"

# A host not listed: refused at ingest.
drop h.json unlisted "http://localhost:$PB/hook"
rid=$(refused h.json)
like "$(json "$T/status/$rid/status.json" 'd["error"]["message"]')" \
	"webhook host 'localhost' is not one this server sends to" \
	"a host not in manifest_webhook_hosts is refused"
is "$(received "$T/man.jsonl" "$rid")" "" "and hears nothing"
stop_daemon
done_testing
