#!/bin/sh
# t0450-notify-reload.sh - a reload reaches the running webhook worker
# (issue 18 item 1): with the daemon running and its receiver verifying
# signatures with a NEW secret while the config still has the OLD one,
# every delivery is refused (401); rewriting the config with the new
# secret (the daemon reloads on the file change) gets every pending event
# delivered, without restarting the daemon or the worker. Then the webhook
# URL is changed (and SIGHUP sent): the next task's events go to the new
# receiver only.
. "$(dirname "$0")/lib.sh"
require python3
trap 'kill_all; _cleanup' EXIT
OLD="whsec_$(printf 'the old secret, rotated out' | base64)"
NEW="whsec_$(printf 'the new secret, rotated in!' | base64)"

start_receiver r1 --secret "$NEW" || bail_out "receiver"
P1=$PORT
start_receiver r2 --secret "$NEW" || bail_out "receiver"
P2=$PORT

conf() { # URL SECRET: (re)write the config atomically
	write_conf "$T/ladderd.conf.tmp" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
notify = { webhook = \"$1\"; secret = \"$2\"; timeout = 2; };
profiles = { $(quick_profile) };"
	mv "$T/ladderd.conf.tmp" "$T/ladderd.conf"
}
export LADDERD_WEBHOOK_BACKOFF_MS=200
conf "http://127.0.0.1:$P1/hook" "$OLD"
start_daemon "$T/ladderd.conf"
notify_pid() { pgrep -f "ladderd notify -c $T/" | head -n 1; }
wait_for 10 test -n "$(notify_pid)"
WORKER=$(notify_pid)

echo one >"$T/a.mp4"
mv "$T/a.mp4" "$T/ingest/a.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^a-'"
id=$(task_ids_for a)
wait_state "$id" complete 20
wait_for 10 grep -q "rejected $id-1: no matching v1 signature" "$T/r1.log"
ok "with the old secret the receiver refuses the events (401)" \
	grep -q "rejected $id-1: no matching v1 signature" "$T/r1.log"
is "$(received "$T/r1.jsonl" "$id")" "" "nothing was accepted yet"

# Rotate: the daemon sees the file change and reloads.
conf "http://127.0.0.1:$P1/hook" "$NEW"
wait_for 20 all_delivered "$T/r1.jsonl" "$id"
ok "after the rotation every event is delivered, signed with the new secret" \
	all_delivered "$T/r1.jsonl" "$id"
like "$(cat "$T/daemon.log")" "notify worker: config reloaded" \
	"the worker says it reloaded"
is "$(notify_pid)" "$WORKER" "the same worker process (reloaded, not restarted)"
ok "the daemon still runs" kill -0 "$DAEMON_PID"

# A new URL, with an explicit SIGHUP too.
conf "http://127.0.0.1:$P2/hook" "$NEW"
kill -HUP "$DAEMON_PID"
wait_for 10 sh -c "[ \$(grep -c 'notify worker: config reloaded' '$T/daemon.log') -ge 2 ]"
echo two >"$T/b.mp4"
mv "$T/b.mp4" "$T/ingest/b.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^b-'"
id2=$(task_ids_for b)
wait_state "$id2" complete 20
wait_for 20 all_delivered "$T/r2.jsonl" "$id2"
ok "after the URL change the next task's events go to the new receiver" \
	all_delivered "$T/r2.jsonl" "$id2"
is "$(received "$T/r1.jsonl" "$id2")" "" "and none to the old one"
is "$(notify_pid)" "$WORKER" "still the same worker process"
stop_daemon
is "$?" 0 "the daemon stops cleanly"
done_testing
