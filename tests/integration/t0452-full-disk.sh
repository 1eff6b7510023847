#!/bin/sh
# A full disk: the spool, the publish folder (and the ingest folder, on the
# same file system as the spool, as recommended) on a small tmpfs that a
# filler leaves too little room on. The task that runs out of space is
# deferred with "No space left on device" in its status, its source kept,
# nothing half-published, the daemon alive; once the filler is gone the
# task completes by itself, exactly once.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; umount "$T/disk" 2>/dev/null; _cleanup' EXIT
require ffmpeg

[ "$(id -u)" = 0 ] || skip_all "mounting a tmpfs needs root"
mkdir -p "$T/disk"
mount -t tmpfs -o size=6m,mode=0755 ladderd-test "$T/disk" 2>/dev/null ||
	skip_all "cannot mount a tmpfs here"

write_conf "$T/ladderd.conf" "
max_rungs = 1;
retry_delay = 1;
watch = ( { path = \"$T/disk/ingest\"; profile = \"small\"; } );
profiles = {
  small = {
    segment_duration = 1;
    video = { preset = \"ultrafast\"; };
    ladder = ( { name = \"360p\"; height = 360; bitrate = 1200; },
               { name = \"240p\"; height = 240; bitrate = 600; } );
  };
};"
sed -i "s|^spool = .*|spool = \"$T/disk/spool\";|; s|^publish = .*|publish = \"$T/disk/publish\";|" \
	"$T/ladderd.conf"
mkdir -p "$T/disk/ingest"
mkclip_av "$T/clip.mp4" 640x360 4
start_daemon "$T/ladderd.conf"
ok "the daemon runs with its spool on the small file system" \
	test -d "$T/disk/spool/tasks"

# Leave room for the drop and a little more, not for its renditions.
size=$(stat -c %s "$T/clip.mp4")
avail=$(df -B1 --output=avail "$T/disk" | tail -n 1 | tr -d ' ')
head -c $((avail - size - 96 * 1024)) /dev/zero >"$T/disk/filler"
cp "$T/clip.mp4" "$T/disk/ingest/.clip.mp4.part" &&
	mv "$T/disk/ingest/.clip.mp4.part" "$T/disk/ingest/clip.mp4"
wait_for 20 sh -c "ls '$T/status' | grep -q '^clip-'"
id=$(task_ids_for clip)
ok "the drop was claimed" test -n "$id"
# The deferral event: back to "queued", the error, when it runs again.
deferral() {
	grep '"state":"queued"' "$T/status/$id/events.ndjson" |
		grep '"retry_at"' | grep -i 'no space left' | head -n 1
}
wait_for 60 sh -c "grep '\"retry_at\"' '$T/status/$id/events.ndjson' | grep -qi 'no space left'"
ev=$(deferral)
like "$ev" '"error":\{"stage":"chord","message":"rung [^"]*No space left on device' \
	"the status says there is no space left"
like "$ev" '"state":"queued"' "the task waits in the queue (deferred), it has not failed"
like "$ev" '"retry_at":"20[0-9-]+T[0-9:]+Z"' "and says when it is tried again"
ok "the daemon is alive" kill -0 "$DAEMON_PID"
ok "the source is kept, intact" \
	cmp "$T/clip.mp4" "$T/disk/spool/tasks/$id/source/input.mp4"
ok "the task is deferred in the spool" \
	sh -c "ls '$T/disk/spool/deferred' '$T/disk/spool/queue' '$T/disk/spool/active' | grep -q '$id'"
is "$(ls -A "$T/failed" | wc -l | tr -d ' ')" 0 "nothing failed"
is "$(ls -A "$T/disk/publish" | wc -l | tr -d ' ')" 0 "nothing half-published"
like "$(cat "$T/daemon.log")" "job=$id: transient failure, retrying in" \
	"the log says it will be retried"

rm -f "$T/disk/filler"
wait_state "$id" complete 120
is "$(state_of "$id")" complete "with space again the task completes by itself"
is "$(grep -c '"state":"complete"' "$T/status/$id/events.ndjson")" 1 \
	"complete reported once"
ok "the package is published" test -s "$T/disk/publish/$id/master.m3u8"
ok "with both rungs" test -s "$T/disk/publish/$id/240p/index.m3u8"
is "$(find "$T/disk/publish" -name '*.tmp*' | wc -l | tr -d ' ')" 0 \
	"no temp file in publish/"
is "$(ls -A "$T/disk/ingest" "$T/disk/spool/tasks" | grep -v ':$' | grep -c .)" 0 \
	"the ingest folder and the spool are empty"
stop_daemon
is "$?" 0 "the daemon stops cleanly"
done_testing
