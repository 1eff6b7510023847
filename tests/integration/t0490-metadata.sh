#!/bin/sh
# t0490-metadata.sh - a manifest's metadata is not multiplied into every
# event (issue 9 finding 7): it is in the queued and the terminal event
# (and status.json), in no other; more than max_metadata bytes (as compact
# JSON) or a control character in a key or value is refused with the
# reason.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
max_metadata = 256;
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile download 10 notify) };"
start_daemon "$T/ladderd.conf"
mkdir -p "$T/ingest/media"
drop() { # NAME JSON
	printf '%s' "$2" >"$T/$1.tmp"
	mv "$T/$1.tmp" "$T/ingest/$1"
}
# refused NAME: the id a refused drop NAME is filed under, once failed.
refused() {
	wait_for 10 sh -c "ls '$T'/failed/*/'$1' >/dev/null 2>&1" || return 1
	_id=$(basename "$(dirname "$(ls "$T"/failed/*/"$1" | head -n 1)")")
	wait_state "$_id" failed 10
	echo "$_id"
}

echo ok >"$T/ingest/media/good.mov"
drop good.json '{"task_id": "good", "source": "media/good.mov", "metadata": {"asset": 42, "title": "Trailer"}}'
wait_state good complete 20
is "$(state_of good)" complete "a task with small metadata completes"
n=$(wc -l <"$T/status/good/events.ndjson")
with=$(grep -c '"metadata":{"asset":42,"title":"Trailer"}' "$T/status/good/events.ndjson")
is "$with" 2 "metadata is in 2 of its $n events"
like "$(head -n 1 "$T/status/good/events.ndjson")" '"state":"queued".*"metadata"' "the queued one"
like "$(tail -n 1 "$T/status/good/events.ndjson")" '"state":"complete".*"metadata"' "and the terminal one"
ok "there are other events without it" test "$n" -gt 2
is "$(json "$T/status/good/status.json" 'd["metadata"]["asset"]')" 42 "status.json has it"

big=$(head -c 300 /dev/zero | tr '\0' x)
echo x >"$T/ingest/media/big.mov"
drop big.json "{\"task_id\": \"big\", \"source\": \"media/big.mov\", \"metadata\": {\"blob\": \"$big\"}}"
rid=$(refused big.json)
like "$(json "$T/status/$rid/status.json" 'd["error"]["message"]')" \
	"^metadata is 311 bytes as JSON, more than max_metadata \\(256\\)\$" \
	"metadata larger than max_metadata is refused"

echo x >"$T/ingest/media/ctl.mov"
drop ctl.json '{"task_id": "ctl", "source": "media/ctl.mov", "metadata": {"note": "a\nladderd[1]: info: job=payroll: complete"}}'
rid=$(refused ctl.json)
like "$(json "$T/status/$rid/status.json" 'd["error"]["message"]')" \
	"metadata contains control characters" "a control character in a value is refused"

echo x >"$T/ingest/media/ctlkey.mov"
drop ctlkey.json '{"task_id": "ctlkey", "source": "media/ctlkey.mov", "metadata": {"nested": {"k\u001b[31m": 1}}}'
rid=$(refused ctlkey.json)
like "$(json "$T/status/$rid/status.json" 'd["error"]["message"]')" \
	"metadata contains control characters" "a control character in a nested key is refused"
stop_daemon
done_testing
