#!/bin/sh
# The crash matrix: kill -9 of the whole daemon (supervisor, job, rungs,
# decoder, webhook worker: its session) at named points of a task's life,
# then a restart. At every point the task completes exactly once, its
# package equals an uninterrupted run's (file list, playlists, MPD, and the
# media bytes when a second uninterrupted run shows the encode is
# deterministic), publish/ holds no temp file, the ingest folder, the spool
# and /dev/shm are left clean, events.ndjson has seq 1..n once each, and a
# webhook receiver on 127.0.0.1 got every seq (duplicates allowed). The
# drop is a media file, or for the points named manifest:POINT a manifest
# whose source waits in a subfolder.
#
# The kill comes from the LADDERD_CRASH_AT hook (stages/crashpoint.h),
# compiled only into test builds (configure --enable-crash-points).
# LADDERD_CRASH_POINTS="a b" runs only those points; LADDERD_CRASH_JOBS sets
# how many points run at once (default 3).
. "$(dirname "$0")/lib.sh"
require ffmpeg
# xdev:POINT publishes to another file system (a folder in /dev/shm).
SHM=/dev/shm/ladderd-t0450.$$
trap 'kill_all; rm -rf "$SHM"; _cleanup' EXIT

grep -q LADDERD_CRASH_AT "$LADDERD" ||
	skip_all "not a test build (configure --enable-crash-points)"

POINTS=${LADDERD_CRASH_POINTS:-"
ingest.claimed ingest.queue supervisor.activated job.loaded
stage.before/probe probe.opened stage.after/hls_header chord.started
rung.start/180p decode.packet#12 transcode.frame/180p#20
transcode.frame/120p#35 rung.result/120p chord.joined engine.packaging
hls_footer.written stage.after/hls_footer chunk_dash.mpd verify.master
publish.rename publish.renamed stage.after/publish engine.terminal
supervisor.job_complete status.appended#1 status.outbox#1
status.appended#3 status.outbox#4 webhook.delivered#1 webhook.delivered#5
supervisor.reload manifest:ingest.claimed manifest:ingest.queue
manifest:publish.renamed manifest:engine.terminal xdev:publish.copied
xdev:stage.after/publish"}
JOBS=${LADDERD_CRASH_JOBS:-3}
export LADDERD_WEBHOOK_BACKOFF_MS=200

start_receiver receiver --quiet ||
	skip_all "the webhook receiver did not start"
mkclip_av "$T/clip.mp4" 320x180 2

# conf DIR: a config with every folder under DIR.
conf() {
	mkdir -p "$1/spool" "$1/publish" "$1/status" "$1/failed" "$1/ingest"
	cat >"$1/ladderd.conf" <<CONF
spool = "$1/spool";
publish = "$1/publish";
status = "$1/status";
failed = "$1/failed";
stage_dir = "$BUILD_STAGES";
max_rungs = 1;
watch = ( { path = "$1/ingest"; profile = "crash"; } );
notify = { webhook = "http://127.0.0.1:$PORT/hook"; timeout = 5; };
profiles = {
  crash = {
    segment_duration = 1;
    video = { preset = "ultrafast"; };
    audio = { bitrate = 64; };
    # No rung above half the pixels: in the shared-decode group each
    # gets one x264 thread, and one-thread x264 is deterministic.
    ladder = ( { name = "180p"; height = 180; bitrate = 300; },
               { name = "144p"; height = 144; bitrate = 200; },
               { name = "120p"; height = 120; bitrate = 150; } );
  };
};
CONF
}

# daemon DIR LOG [CRASH_AT]: start a daemon in its own session; prints its
# pid (which is the session id).
daemon() {
	if [ -n "${3:-}" ]; then
		LADDERD_CRASH_AT=$3 setsid "$LADDERD" -c "$1/ladderd.conf" \
			$ALLOW_ROOT >>"$2" 2>&1 </dev/null &
	else
		setsid "$LADDERD" -c "$1/ladderd.conf" $ALLOW_ROOT >>"$2" 2>&1 \
			</dev/null &
	fi
	echo $!
}

# drop DIR [manifest ID]: the clip arrives by rename, as a careful writer
# does it; or a manifest (task id ID) naming it in a subfolder.
drop() {
	if [ "${2:-}" = manifest ]; then
		mkdir -p "$1/ingest/sub" &&
			cp "$T/clip.mp4" "$1/ingest/sub/clip.mp4" &&
			printf '{"task_id": "%s", "source": "sub/clip.mp4"}' "$3" \
				>"$1/ingest/.job.json.part" &&
			mv "$1/ingest/.job.json.part" "$1/ingest/job.json"
		return
	fi
	cp "$T/clip.mp4" "$1/ingest/.clip.mp4.part" &&
		mv "$1/ingest/.clip.mp4.part" "$1/ingest/clip.mp4"
}

# stop PID: SIGTERM, a bounded wait, SIGKILL of its session if needed.
stop() {
	kill -TERM "$1" 2>/dev/null
	wait_for 30 sh -c "! kill -0 $1 2>/dev/null" ||
		pkill -KILL -s "$1" 2>/dev/null
	wait_for 10 sh -c "! pgrep -s $1 >/dev/null"
}

# delivered ID: the seqs the receiver got for task ID, unique, sorted.
delivered() {
	[ -s "$T/receiver.jsonl" ] || return 0
	grep "\"task_id\": *\"$1\"" "$T/receiver.jsonl" |
		"$PY" -c 'import json,sys
print(" ".join(str(s) for s in sorted({json.loads(l)["body"]["seq"] for l in sys.stdin})))'
}
# all_delivered DIR ID: the receiver has seq 1..n of events.ndjson.
all_delivered() {
	n=$(wc -l <"$1/status/$2/events.ndjson")
	[ "$(delivered "$2")" = "$(seq -s ' ' 1 "$n")" ]
}
complete() { # DIR ID
	grep -q '"state":[[:space:]]*"complete"' "$1/status/$2/status.json" 2>/dev/null
}

# package DIR ID OUT: a normalised description of a published package:
# every file with its size class, the playlists and MPD with the task id
# replaced, and (in OUT.bytes) a checksum of every file.
package() {
	(cd "$1/publish/$2" && find . -type f | LC_ALL=C sort) >"$3.files"
	: >"$3.lists"
	for f in $(cat "$3.files"); do
		case $f in
		*.m3u8 | *.mpd)
			echo "== $f" >>"$3.lists"
			sed "s/$2/ID/g" "$1/publish/$2/$f" >>"$3.lists"
			;;
		esac
	done
	# Measured bit rates and I-frame byte ranges (iframes.m3u8: the
	# keyframe's size), for a comparison that allows other bytes.
	sed -E 's/(BANDWIDTH=|bandwidth="|BYTERANGE:)[0-9]+/\1N/g' "$3.lists" >"$3.shape"
	(cd "$1/publish/$2" && for f in $(cat "$3.files"); do
		case $f in
		*.m3u8 | *.mpd) sed "s/$2/ID/g" "$f" | md5sum | sed "s|-|$f|" ;;
		*) md5sum "$f" ;;
		esac
	done) >"$3.bytes"
}

# A reference run, twice: the package a crash must not change, and
# whether the encode is deterministic here (then bytes are compared).
reference() { # NAME
	local d="$T/$1" pid id
	conf "$d"
	pid=$(daemon "$d" "$d/daemon.log")
	wait_for 10 test -s "$d/status/_daemon.json"
	drop "$d"
	wait_for 20 sh -c "ls '$d/status' | grep -q '^clip-'"
	id=$(ls "$d/status" | grep '^clip-')
	wait_for 60 complete "$d" "$id"
	stop "$pid"
	package "$d" "$id" "$T/$1"
}
reference ref1
reference ref2
ok "the uninterrupted run completes and publishes" test -s "$T/ref1.files"
[ -s "$T/ref1.files" ] || {
	sed 's/^/#   /' "$T/ref1/daemon.log" | tail -n 20
	done_testing
}
# x264 with one thread is reproducible on a quiet machine, but not always
# here (a loaded machine, sanitizers: one full ASan run in four gave other
# 180p bytes in tasks that were not even killed mid-encode). So what is
# asserted byte for byte is what a crash could break: every rung finished
# before the kill is published exactly as it was then; a package encoded
# after the restart is compared with the uninterrupted run's by its files
# and playlists (measured bit rates aside), and its bytes only reported.
if cmp -s "$T/ref1.bytes" "$T/ref2.bytes"; then
	echo "# two uninterrupted runs gave the same bytes"
else
	echo "# two uninterrupted runs gave different bytes:"
	diff "$T/ref1.bytes" "$T/ref2.bytes" | head -5 | sed 's/^/#   /'
fi

# One point, in its own folders: crash, restart, check. Writes TAP lines
# as "STATUS<TAB>NAME<TAB>DIAG" into DIR/result.
point() {
	local p=${1#*:} d="$T/pt-$(echo "$1" | tr '/#:' '___')" pid id n r
	local res="$d/result" kind=media
	[ "$p" = "$1" ] || kind=${1%%:*}
	rep() {
		printf '%s\t%s\t%s\n' "$1" "$kind $p: $2" \
			"$(printf '%s' "${3:-}" | tr '\n\t' '  ')" >>"$res"
	}
	conf "$d"
	: >"$res"
	if [ "$kind" = xdev ]; then
		mkdir -p "$SHM/${d##*/}" && rmdir "$d/publish" &&
			ln -s "$SHM/${d##*/}" "$d/publish"
	fi
	pid=$(daemon "$d" "$d/daemon1.log" "$p")
	wait_for 10 test -s "$d/status/_daemon.json"
	drop "$d" "$kind" "clip-$(echo "$1" | md5sum | cut -c1-6)"
	if [ "$p" = supervisor.reload ]; then
		wait_for 20 sh -c "ls '$d/spool/active' | grep -q clip-"
		echo "# touched" >>"$d/ladderd.conf"
		kill -HUP "$pid" 2>/dev/null
	fi
	wait_for 60 sh -c "! kill -0 $pid 2>/dev/null"
	grep -q "crash point '$p'" "$d/daemon1.log"
	rep $? "the crash point was reached"
	wait_for 10 sh -c "! pgrep -s $pid >/dev/null"
	rep $? "nothing of the crashed daemon is left running"
	pkill -KILL -s "$pid" 2>/dev/null
	# What was finished at the kill: the files of every rung whose
	# result says ok, and a package already published.
	: >"$d/kept"
	for r in "$d"/spool/tasks/*/rungs/*/; do
		grep -qs '"status":[[:space:]]*"ok"' "$r/result.json" || continue
		r=${r%/}
		[ -d "${r%/rungs/*}/package/${r##*/}" ] || continue # _decode
		(cd "${r%/rungs/*}/package" &&
			find "${r##*/}" -type f | LC_ALL=C sort | xargs -r md5sum) \
			>>"$d/kept"
	done
	for r in "$d"/publish/*/; do
		[ -d "$r" ] && (cd "$r" && find . -type f | sed 's|^\./||' |
			LC_ALL=C sort | xargs -r md5sum) >>"$d/kept"
	done
	pid=$(daemon "$d" "$d/daemon2.log")
	wait_for 20 sh -c "ls '$d/status' | grep -q '^clip-'"
	id=$(ls "$d/status" | grep '^clip-' | head -n 1)
	wait_for 60 complete "$d" "$id"
	rep $? "after the restart the task completes" \
		"$(cat "$d/status/$id/status.json" 2>/dev/null | head -c 600)"
	wait_for 30 all_delivered "$d" "$id"
	# A task whose end was reported before the kill still runs once more
	# to be cleaned up: wait for that before stopping.
	wait_for 30 sh -c "[ -z \"\$(ls -A '$d/spool/tasks' '$d/spool/queue' \
		'$d/spool/active' 2>/dev/null | grep -v ':\$' | grep .)\" ]"
	stop "$pid"
	rep "$([ "$(ls "$d/status" | grep -c '^clip-')" = 1 ]; echo $?)" \
		"one task for the drop" "$(ls "$d/status")"
	n=$(grep -c '"state":"complete"' "$d/status/$id/events.ndjson")
	rep "$([ "$n" = 1 ]; echo $?)" "complete reported once" "got $n"
	r=$(sed 's/.*"seq":\([0-9]*\),.*/\1/' "$d/status/$id/events.ndjson" | tr '\n' ' ')
	n=$(wc -l <"$d/status/$id/events.ndjson")
	rep "$([ "$r" = "$(seq -s ' ' 1 "$n") " ]; echo $?)" \
		"events.ndjson has seq 1..$n once each" "$r"
	all_delivered "$d" "$id"
	rep $? "the receiver got every event" "got $(delivered "$id") of 1..$n"
	package "$d" "$id" "$d/pkg" 2>/dev/null
	cmp -s "$T/ref1.files" "$d/pkg.files"
	rep $? "the same files as the uninterrupted run" \
		"$(diff "$T/ref1.files" "$d/pkg.files" | head -n 8)"
	cmp -s "$T/ref1.shape" "$d/pkg.shape"
	rep $? "the same playlists and MPD but for measured bit rates" \
		"$(diff "$T/ref1.shape" "$d/pkg.shape" | head -n 8)"
	if [ -s "$d/kept" ]; then
		r=$(cd "$d/publish/$id" 2>/dev/null && md5sum -c --quiet \
			"$d/kept" 2>&1)
		rep $? "what was finished before the kill is published byte for byte ($(wc -l <"$d/kept") files)" "$r"
	fi
	cmp -s "$T/ref1.bytes" "$d/pkg.bytes" ||
		printf '#\t%s\t\n' "$p: media bytes differ from the uninterrupted run" >>"$res"
	r=$(ls -A "$d/publish")
	rep "$([ "$r" = "$id" ]; echo $?)" "publish/ holds the package only" "$r"
	r=$(find "$d/publish/" -name '*.tmp*' -o -name '*.incoming*' -o -name '.*')
	rep "$([ -z "$r" ]; echo $?)" "no temp file in publish/" "$r"
	rmdir "$d/ingest/sub" 2>/dev/null # the manifest's emptied subfolder
	r=$(ls -A "$d/ingest" "$d/failed" "$d/spool/tasks" "$d/spool/queue" \
		"$d/spool/active" "$d/spool/deferred" 2>&1 | grep -v ':$' | grep .)
	rep "$([ -z "$r" ]; echo $?)" \
		"ingest, failed and the spool's queues are empty" "$r"
	r=$(ls /dev/shm | grep -- "-$id-" || true)
	rep "$([ -z "$r" ]; echo $?)" "no frame ring left in /dev/shm" "$r"
}

# Run the points JOBS at a time.
set -- $POINTS
while [ $# -gt 0 ]; do
	pids=
	for i in $(seq 1 "$JOBS"); do
		[ $# -gt 0 ] || break
		point "$1" &
		pids="$pids $!"
		shift
	done
	for p in $pids; do
		wait "$p"
	done
done
for p in $POINTS; do
	d="$T/pt-$(echo "$p" | tr '/#:' '___')"
	while IFS="$(printf '\t')" read -r st name diag; do
		if [ "$st" = "#" ]; then
			echo "# $name"
		else
			_report "$st" "$name" "$diag"
		fi
	done <"$d/result"
done
done_testing
