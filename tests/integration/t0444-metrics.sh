#!/bin/sh
# t0444-metrics.sh - status/_metrics.prom: it parses (tests/tools/promcheck.py,
# a strict reader of the Prometheus text format), is replaced atomically at
# most once a second, and its numbers match what happened: a task encoded
# (its rung's encode seconds and fps), a refused manifest, a junk drop that
# fails, a config reload refused, every event delivered to the webhook.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT
require ffmpeg
start_receiver hook --quiet || bail_out "no webhook receiver"
write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"tiny\"; } );
notify = { webhook = \"http://127.0.0.1:$PORT/hook\"; timeout = 2; };
profiles = { tiny = { ladder = ( { name = \"p90\"; height = 90; bitrate = 100; } ); }; };"
cp "$T/ladderd.conf" "$T/good.conf"
mkclip "$T/clip.mp4" -f lavfi -i testsrc2=size=160x120:rate=25:duration=2 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p
M="$T/status/_metrics.prom"
prom() { "$PY" "$LADDERD_SRC/tests/tools/promcheck.py" "$M"; }
val() { # SERIES: its value in _metrics.prom (strictly parsed)
	prom | "$PY" -c 'import json,sys; print("%g" % json.load(sys.stdin).get(sys.argv[1], -1))' "$1"
}
start_daemon "$T/ladderd.conf"
wait_for 10 test -s "$M"
ok "_metrics.prom is written at start" test -s "$M"
is "$(prom >/dev/null; echo $?)" 0 "and parses strictly"
is "$(val ladderd_start_time_seconds)" \
	"$("$PY" -c 'import json,sys,calendar,time; d=json.load(open(sys.argv[1])); print("%g" % calendar.timegm(time.strptime(d["started"], "%Y-%m-%dT%H:%M:%SZ")))' "$T/status/_daemon.json")" \
	"start time = _daemon.json's"

# A task encodes while we watch how often the file is replaced.
cp "$T/clip.mp4" "$T/ingest/clip.mp4"
"$PY" - "$M" "$T/replacements" <<'PY' &
import os, sys, time
seen, end = set(), time.monotonic() + 3
while time.monotonic() < end:
    try:
        seen.add(os.stat(sys.argv[1]).st_ino)
    except FileNotFoundError:
        print("missing"); break
    time.sleep(0.005)
open(sys.argv[2], "w").write("%d\n" % len(seen))
PY
W=$!
wait_for 10 sh -c "ls '$T/status' | grep -q '^clip-'"
clip=$(task_ids_for clip)
wait $W
ok "replaced at most once a second, never missing (3 s: $(cat "$T/replacements") versions)" \
	test "$(cat "$T/replacements")" -le 4
wait_state "$clip" complete 60
printf '{"task_id": "x", "source": "clip.mp4", "colour": "red"}' >"$T/ingest/bad.json"
echo junk >"$T/ingest/junk.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^junk-'"
junk=$(task_ids_for junk)
wait_state "$junk" failed 30
printf 'this is { not libconfig\n' >"$T/ladderd.conf"
wait_for 10 grep -q 'config not reloaded' "$T/daemon.log"
cp "$T/good.conf" "$T/ladderd.conf"
total_events() { # every event of every task, as status.json's seq says
	"$PY" -c 'import json,glob,sys; print(sum(json.load(open(f))["seq"] for f in glob.glob(sys.argv[1] + "/*/status.json")))' "$T/status"
}
settled() {
	[ "$(val 'ladderd_tasks_total{state="failed"}')" = 2 ] &&
	[ "$(val 'ladderd_outbox_backlog{transport="webhook"}')" = 0 ] &&
	[ "$(val 'ladderd_outbox_delivered_total{transport="webhook"}')" = "$(total_events)" ] &&
	[ "$(val ladderd_config_load_errors_total)" = 1 ]
}
wait_for 20 settled
is "$(prom >/dev/null; echo $?)" 0 "_metrics.prom parses strictly after all that"
is "$(val 'ladderd_tasks_total{state="queued"}')" 2 "tasks queued: the clip and the junk"
is "$(val 'ladderd_tasks_total{state="complete"}')" 1 "tasks complete: the clip"
is "$(val 'ladderd_tasks_total{state="failed"}')" 2 "tasks failed: the junk and the refused manifest"
is "$(val ladderd_refused_drops_total)" 1 "drops refused at ingest: the manifest"
is "$(val ladderd_queue_length)/$(val ladderd_running_jobs)/$(val ladderd_running_units)" 0/0/0 \
	"queue, running jobs and units are back to 0"
is "$(val ladderd_rung_encode_seconds_count)" 1 "one rung's encode time observed"
el=$(json "$T/status/$clip/status.json" 'd["rungs"]["p90"]["elapsed"]')
is "$(val ladderd_rung_encode_seconds_sum)" "$("$PY" -c "print('%g' % float('$el'))")" \
	"its encode seconds are the rung's elapsed time"
is "$(val ladderd_rung_encode_fps_count)" 1 "one rung's fps observed"
fps=$("$PY" -c "print('%g' % (50 / float('$el')))")
is "$(val ladderd_rung_encode_fps_sum)" "$fps" "its fps = 50 frames / elapsed"
is "$(val 'ladderd_outbox_delivered_total{transport="webhook"}')" "$(total_events)" \
	"webhook deliveries = every event of every task ($(total_events))"
is "$(val 'ladderd_outbox_dead_total{transport="webhook"}')" 0 "none given up on"
is "$(val ladderd_config_load_errors_total)" 1 "one config reload refused"
is "$(ls "$T/status" | grep -c '\.prom$')" 1 "one .prom file in the status folder (no temp file ends in .prom)"
stop_daemon
done_testing
