#!/bin/sh
# Crash recovery with real media: kill -9 of the daemon and all its
# processes in the middle of a transcode, restart, the task completes and
# rungs finished before the kill are not encoded again; SIGTERM during a
# job exits 0 in bounded time and the task resumes at the next start.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT
require ffmpeg

write_conf "$T/ladderd.conf" "
max_rungs = 1;
shutdown_timeout = 20;
watch = ( { path = \"$T/ingest\"; profile = \"small\"; } );
profiles = {
  small = {
    segment_duration = 1;
    shared_decode = false;
    video = { preset = \"ultrafast\"; };
    $LADDER3
  };
};"
mkclip_av "$T/src.mp4" 640x360 8
start_daemon "$T/ladderd.conf"
cp "$T/src.mp4" "$T/ingest/crash.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^crash-'"
id=$(task_ids_for crash)
ok "the drop was queued" test -n "$id"
# Wait until one rung is finished and another is running.
one_done() {
	ls "$T/spool/tasks/$id/rungs/"*/result.json >/dev/null 2>&1 &&
		[ "$(ls -d "$T/spool/tasks/$id/rungs/"*/ | wc -l)" -ge 2 ]
}
wait_for 60 one_done
done_before=$(cd "$T/spool/tasks/$id/rungs" && for r in [!_]*; do
	[ -s "$r/result.json" ] && grep -q '"status":[[:space:]]*"ok"' "$r/result.json" && echo "$r"
done | sort | tr '\n' ' ')
ok "at least one rung finished before the kill ($done_before)" test -n "$done_before"
kill_all
wait_for 10 sh -c "! pgrep -f '[l]adderd .*$T/' >/dev/null"
ok "nothing of ours is left running" sh -c "! pgrep -f '[l]adderd .*$T/' >/dev/null"
is "$(state_of "$id")" transcoding "the task was mid-transcode"
# A marker write the kill interrupted (fsutil's NAME.tmp.PID) is stale.
: >"$T/spool/queue/0000000000000001-ghost.tmp.4242"
: >"$T/spool/deferred/0000000000000001-ghost.tmp.4243"

start_daemon "$T/ladderd.conf" "$T/daemon2.log"
ok "a restart removes temp files of interrupted writes from the queues" \
	sh -c "! ls '$T/spool/queue' '$T/spool/deferred' | grep -q '\.tmp\.'"
wait_state "$id" complete 120
is "$(state_of "$id")" complete "after the restart the task completes"
for r in $done_before; do
	like "$(cat "$T/daemon2.log")" "rendition=$r: finished in an earlier run, reusing it" \
		"rung $r finished before the kill is reused, not re-encoded"
	n=$(grep -c "\"quality\":\"$r\",.*\"rung_state\":\"done\"" "$T/status/$id/events.ndjson")
	is "$n" 1 "rung $r reported done exactly once across both runs"
done
ok "the package is published" test -s "$T/publish/$id/master.m3u8"
is "$(grep -c '"state":"complete"' "$T/status/$id/events.ndjson")" 1 "complete reported once"
is "$(ls -A "$T/ingest" | wc -l | tr -d ' ')" 0 "nothing left in the ingest folder"
is "$(ls "$T/failed" | wc -l | tr -d ' ')" 0 "nothing failed"

# SIGTERM in the middle of a job.
cp "$T/src.mp4" "$T/ingest/term.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^term-'"
id2=$(task_ids_for term)
wait_state "$id2" transcoding 30
start=$(date +%s)
stop_daemon
rc=$?
took=$(( $(date +%s) - start ))
is "$rc" 0 "SIGTERM during a job: the daemon exits 0"
ok "within a bounded time (${took}s)" test "$took" -le $((25 * MULT))
ok "no worker is left behind" sh -c "! pgrep -f '[l]adderd .*$T/' >/dev/null"
ok "the task is not failed" test "$(state_of "$id2")" != failed
ok "the task is back in the queue" sh -c "ls '$T/spool/queue' | grep -q '$id2'"
start_daemon "$T/ladderd.conf" "$T/daemon3.log"
wait_state "$id2" complete 120
is "$(state_of "$id2")" complete "the stopped task completes after the restart"
stop_daemon
done_testing
