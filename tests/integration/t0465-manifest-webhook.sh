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
trap 'kill_all; _cleanup' EXIT
OPS="whsec_$(printf 'the operator secret 0123456' | base64)"
MAN="whsec_$(printf 'the manifest secret 6543210' | base64)"

start_receiver op --secret "$OPS" || bail_out "receiver"
PA=$PORT
start_receiver man --secret "$MAN" || bail_out "receiver"
PB=$PORT

conf() { # EXTRA_NOTIFY_SETTINGS
	write_conf "$T/ladderd.conf.tmp" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
notify = { webhook = \"http://127.0.0.1:$PA/hook\"; secret = \"$OPS\"; timeout = 2; $1 };
profiles = { $(quick_profile) };"
	mv "$T/ladderd.conf.tmp" "$T/ladderd.conf"
}
drop_manifest() { # NAME TASK_ID WEBHOOK: a manifest with a local source
	mkdir -p "$T/ingest/media"
	echo "$2" >"$T/ingest/media/$2.mov"
	drop "$1" "$(printf '{"task_id": "%s", "source": "media/%s.mov", "webhook": "%s"}' \
		"$2" "$2" "$3")"
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
drop_manifest d.json deflt "http://127.0.0.1:$PB/hook"
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
drop_manifest m.json good "http://127.0.0.1:$PB/hook"
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
drop_manifest p.json policy "http://127.0.0.2:$PB/hook"
wait_state policy complete 20
wait_for 20 all_delivered "$T/op.jsonl" policy
ok "operator: every event of a task whose webhook is refused" all_delivered "$T/op.jsonl" policy
wait_for 10 sh -c "ls '$T/spool/outbox/dead' | grep -q '^policy@manifest\\.'"
ok "the manifest's events are given up on (outbox/dead)" \
	sh -c "ls '$T/spool/outbox/dead' | grep -q '^policy@manifest\\.'"
like "$(cat "$T/daemon.log")" "task=policy seq=1 \\(manifest webhook\\).*refused by notify.allow_networks" \
	"the operator's log says the address was refused"

# A host not listed: refused at ingest.
drop_manifest h.json unlisted "http://localhost:$PB/hook"
rid=$(refused h.json)
like "$(json "$T/status/$rid/status.json" 'd["error"]["message"]')" \
	"webhook host 'localhost' is not one this server sends to" \
	"a host not in manifest_webhook_hosts is refused"
is "$(received "$T/man.jsonl" "$rid")" "" "and hears nothing"
stop_daemon
done_testing
