#!/bin/sh
# t0385-chunked-resume: segment-level resume of a chunked rung (README,
# "Chunked encoding"). A 30 s source, segment_duration 2, chunk_duration 10: the
# rung 180p is 3 chunk units and a join, run one at a time (max_rungs 1).
#  1. kill -9 of the whole daemon (LADDERD_CRASH_AT, a test build) while
#     chunk 1 encodes: chunk 0 had finished (its result and encode are on
#     disk, an event said chunks_done 1 of 3), chunk 1 had not.
#  2. Restart, SIGTERM as chunk 1 starts again: the daemon stops in
#     bounded time, the task is not complete, chunk 0's records are as
#     run 1 left them.
#  3. Restart, kill -9 as the rung's join unit starts: every chunk is done,
#     and the records of chunk 0 (result.json bytes, the encode's inode
#     and mtime) are exactly as run 1 left them: nothing encoded it again.
#  The rung 360p, above the source, is dropped (its chunks say so).
#  4. Restart: the task completes once (one complete event, one package
#     that verified), status.json says chunks_done 3 of 3, the log says
#     each earlier chunk was reused and no chunk ran twice.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

command -v ffmpeg >/dev/null 2>&1 || skip_all "ffmpeg not installed"
[ -x "$LADDERD" ] || skip_all "ladderd not built"
grep -q LADDERD_CRASH_AT "$LADDERD" ||
	skip_all "not a test build (configure --enable-crash-points)"

write_conf "$T/ladderd.conf" "
max_rungs = 1;
shutdown_timeout = 20;
watch = ( { path = \"$T/ingest\"; profile = \"ch\"; } );
profiles = {
  ch = { segment_duration = 2; chunk_duration = 10;
         video = { preset = \"ultrafast\"; };
         ladder = ( { name = \"360p\"; height = 360; bitrate = 600; },
                    { name = \"180p\"; height = 180; bitrate = 300; } ); };
};"
mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=320x180:rate=25:duration=30 \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=30 \
	-c:v libx264 -preset ultrafast -g 37 -pix_fmt yuv420p -c:a aac -shortest

# run_until CRASH_AT: start the daemon (killing its whole session at the
# named crash point, when given).
run_until() {
	if [ -n "$1" ]; then
		export LADDERD_CRASH_AT=$1
	else
		unset LADDERD_CRASH_AT
	fi
	echo "=== run (crash at '${1:-}')" >>"$T/daemon.log"
	start_daemon "$T/ladderd.conf"
	unset LADDERD_CRASH_AT
}
gone() { ! kill -0 "$DAEMON_PID" 2>/dev/null; }
# record CHUNK: what must not change once the chunk finished.
record() {
	local d="$T/spool/tasks/$id/rungs/180p.chunk00$1"
	grep -q '"status":[[:space:]]*"ok"' "$d/result.json" 2>/dev/null ||
		return 1
	md5sum <"$d/result.json" | cut -c1-32
	stat -c '%i %Y.%y' "$d/transcoded.mp4"
}
done_chunks() { # the latest chunks_done of 180p in events.ndjson
	grep '"chunks_done"' "$T/status/$id/events.ndjson" 2>/dev/null |
		tail -n 1 | sed 's/.*"chunks_done":[[:space:]]*\([0-9]*\).*/\1/'
}

# 1. kill -9 while chunk 1 encodes.
run_until "transcode.frame/180p.chunk001#20"
cp "$T/src.mp4" "$T/ingest/.long.mp4.part" && mv "$T/ingest/.long.mp4.part" "$T/ingest/long.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^long-'"
id=$(task_ids_for long)
ok "the drop was queued" test -n "$id"
wait_for 120 gone
ok "run 1: the crash point killed the daemon's session mid-chunk" gone
kill_all
rec0=$(record 0)
ok "run 1: chunk 0 finished before the kill (result and encode on disk)" \
	test -n "$rec0"
ok "run 1: chunk 1 had not finished" test -z "$(record 1)"
is "$(done_chunks)" 1 "run 1: an event said chunks_done 1 (of 3)"
like "$(grep '"chunks_done"' "$T/status/$id/events.ndjson" | tail -n 1)" \
	'"chunks":[[:space:]]*3' "run 1: ... of 3 chunks"

# 2. SIGTERM as soon as chunk 1 runs again.
started1() { test -e "$T/spool/tasks/$id/rungs/180p.chunk001/request.json"; }
rm -f "$T/spool/tasks/$id/rungs/180p.chunk001/request.json"
run_until ""
wait_for 60 started1
stop_daemon
is "$?" 0 "run 2: SIGTERM while chunk 1 runs stops the daemon, exit 0"
kill_all
ok "run 2: the task is not complete" test "$(state_of "$id")" != complete
is "$(record 0)" "$rec0" "run 2: chunk 0 (finished in run 1) was not encoded again"
rec1=$(record 1)
rec2=$(record 2)

# 3. kill -9 as the join starts: the finished chunks' records are as left.
run_until "rung.start/180p"
wait_for 120 gone
ok "run 3: killed as the rung's join unit started" gone
kill_all
is "$(record 0)" "$rec0" "run 3: chunk 0 (finished in run 1) was not encoded again"
ok "run 3: chunks 1 and 2 are done too" test -n "$(record 1)" -a -n "$(record 2)"
# A chunk that finished before the SIGTERM landed (the machine was quick).
[ -n "$rec1" ] && is "$(record 1)" "$rec1" "run 3: chunk 1 (finished in run 2) was not encoded again"
[ -n "$rec2" ] && is "$(record 2)" "$rec2" "run 3: chunk 2 (finished in run 2) was not encoded again"
rec1=$(record 1)
rec2=$(record 2)

# 4. The task completes, once.
run_until ""
wait_state "$id" complete 120
is "$(state_of "$id")" complete "run 4: the task completes"
stop_daemon
is "$(grep -c '"state":[[:space:]]*"complete"' "$T/status/$id/events.ndjson")" 1 \
	"run 4: exactly one complete event"
ok "run 4: the package is published" test -s "$T/publish/$id/180p/index.m3u8"
is "$(json "$T/status/$id/status.json" '[d["rungs"]["180p"]["chunks_done"], d["rungs"]["180p"]["chunks"]]')" \
	"[3, 3]" "status.json: rung 180p chunks_done 3 of 3"
log=$(cat "$T/daemon.log")
for c in 0 1; do
	is "$(grep -c "rendition=180p.chunk00$c: ok" "$T/daemon.log")" 1 \
		"chunk $c was encoded once across the four runs"
	like "$log" "rendition=180p.chunk00$c: finished in an earlier run, reusing it" \
		"chunk $c: a later run reused it"
done
is "$(grep -c "rendition=180p.chunk002: ok" "$T/daemon.log")" 1 \
	"chunk 2 was encoded once"
is "$(grep -c "rendition=180p: ok" "$T/daemon.log")" 1 \
	"the rung's join ran to the end once"
like "$log" "rendition=360p: dropped" \
	"the rung above the source is dropped once its chunks say so"
ok "its chunks were dropped, not encoded" sh -c \
	"! grep -q 'rendition=360p.chunk00[0-9]: ok' '$T/daemon.log'"
[ "$_failed" = 0 ] || sed 's/^/#   /' "$T/daemon.log" | grep -v debug | tail -n 40
done_testing
