#!/bin/sh
# The daemon takes complete drops (cp, mv, a .part renamed, files present at
# start-up), not a file still being written; refuses symlinks; writes
# status and _daemon.json; one daemon per spool. Uses a quick test workflow
# (no encoding) so it is about the daemon, not the media.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
max_jobs = 2;
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile) };"
# A file present before the daemon starts.
echo early >"$T/ingest/early.mov"
# -v: the debug lines that say a file was looked at and left alone.
start_daemon "$T/ladderd.conf" "$T/daemon.log" -v
# logged TEXT: the daemon's log has a line with TEXT.
logged() { grep -qF -- "$1" "$T/daemon.log"; }
ok "daemon started and wrote _daemon.json" test -s "$T/status/_daemon.json"
is "$(json "$T/status/_daemon.json" 'd["state"]')" running "_daemon.json says running"

# A second daemon on the same spool is refused.
"$LADDERD" -c "$T/ladderd.conf" $ALLOW_ROOT >"$T/second.log" 2>&1
is "$?" 1 "a second daemon on the same spool exits 1"
like "$(cat "$T/second.log")" "another ladderd \(pid $DAEMON_PID\) uses spool" "and says which pid holds it"

wait_for 10 sh -c "ls '$T/publish' | grep -q '^early-'"
ok "a file present at start-up is taken and published" sh -c "ls '$T/publish' | grep -q '^early-'"

# cp (close-write) and mv (moved-to).
echo one >"$T/one.mp4"
cp "$T/one.mp4" "$T/ingest/copied.mp4"
echo two >"$T/two.mp4"
mv "$T/two.mp4" "$T/ingest/moved.mp4"
wait_for 10 sh -c "ls '$T/publish' | grep -q '^copied-' && ls '$T/publish' | grep -q '^moved-'"
ok "a file dropped by cp is published" sh -c "ls '$T/publish' | grep -q '^copied-'"
ok "a file dropped by mv is published" sh -c "ls '$T/publish' | grep -q '^moved-'"
id=$(task_ids_for copied)
is "$(json "$T/status/$id/status.json" '[d["state"], d["complete"]]')" '["complete", true]' "status.json says complete"
seqs=$(json "$T/status/$id/status.json" 'd["seq"]')
is "$(wc -l <"$T/status/$id/events.ndjson" | tr -d ' ')" "$seqs" "events.ndjson has one line per seq"
like "$(head -n 1 "$T/status/$id/events.ndjson")" '"state":"queued"' "the first event is queued"
ok "the ingest folder is empty afterwards" sh -c "[ -z \"\$(ls -A '$T/ingest')\" ]"

# A file written through one open descriptor is not taken before its
# close: the daemon says it saw it and waits, and a later scan (another
# drop taken meanwhile) still leaves it.
exec 3>"$T/ingest/slow.mp4"
echo "chunk 1" >&3
wait_for 10 logged "'$T/ingest/slow.mp4': still open for writing"
ok "the daemon saw the file still being written" \
	logged "'$T/ingest/slow.mp4': still open for writing"
echo "chunk 2" >&3
cp "$T/one.mp4" "$T/ingest/meanwhile.mp4"
wait_for 10 sh -c "ls '$T/publish' | grep -q '^meanwhile-'"
ok "another drop is taken meanwhile" sh -c "ls '$T/publish' | grep -q '^meanwhile-'"
ok "a file still being written is not taken" test -e "$T/ingest/slow.mp4"
is "$(task_ids_for slow)" "" "no task exists for it yet"
echo "chunk 3" >&3
exec 3>&-
wait_for 10 sh -c "ls '$T/publish' | grep -q '^slow-'"
id=$(task_ids_for slow)
ok "it is taken once complete" test -n "$id"
is "$(cat "$T/publish/$id/renditions.json" >/dev/null && echo ok)" ok "and published"

# A .part file is ignored until renamed, then taken once.
echo partial >"$T/ingest/video.mp4.part"
wait_for 10 logged "'$T/ingest/video.mp4.part': temporary name, ignored"
ok "the daemon saw the .part file and ignored it" \
	logged "'$T/ingest/video.mp4.part': temporary name, ignored"
ok "a .part file is left in place" test -e "$T/ingest/video.mp4.part"
mv "$T/ingest/video.mp4.part" "$T/ingest/video.mp4"
wait_for 10 sh -c "ls '$T/publish' | grep -q '^video-'"
is "$(task_ids_for video | wc -l | tr -d ' ')" 1 "the renamed file is taken exactly once"
for f in .hidden x.tmp y~ z.crdownload; do echo t >"$T/ingest/$f"; done
all_ignored() {
	for f in .hidden x.tmp y~ z.crdownload; do
		logged "'$T/ingest/$f': temporary name, ignored" || return 1
	done
}
wait_for 10 all_ignored
ok "the daemon saw each temporary name and ignored it" all_ignored
is "$(ls -A "$T/ingest" | sort | tr '\n' ' ')" ".hidden x.tmp y~ z.crdownload " "temporary names are left alone"
rm -f "$T/ingest/.hidden" "$T/ingest/x.tmp" "$T/ingest/y~" "$T/ingest/z.crdownload"

# A symlink is refused, and the link itself kept in the failed folder.
echo target >"$T/target.mp4"
ln -s "$T/target.mp4" "$T/ingest/link.mp4"
wait_for 10 sh -c "ls '$T/failed' | grep -q '^link-'"
id=$(ls "$T/failed" | grep '^link-' | head -n 1)
like "$(json "$T/failed/$id/error.json" 'd["message"]')" 'symbolic links are not taken' "a symlink is refused with a reason"
is "$(state_of "$id")" failed "its status says failed"
ok "the target file is untouched" test -s "$T/target.mp4"

# SIGHUP with a bad config keeps the old one running.
cp "$T/ladderd.conf" "$T/good.conf"
echo 'settle_time = "soon";' >>"$T/ladderd.conf"
kill -HUP "$DAEMON_PID"
wait_for 10 sh -c "grep -q 'config not reloaded' '$T/daemon.log'"
like "$(grep 'config not reloaded' "$T/daemon.log" | head -n 1)" "ladderd.conf:[0-9]+: 'settle_time' must be an integer" \
	"a bad config on SIGHUP is refused with file:line and reason"
wait_for 5 sh -c "grep -q 'settle_time' '$T/status/_daemon.json'"
like "$(json "$T/status/_daemon.json" 'd["config_error"]')" "settle_time" "_daemon.json shows the config error"
echo again >"$T/again.mp4"
cp "$T/again.mp4" "$T/ingest/again.mp4"
wait_for 10 sh -c "ls '$T/publish' | grep -q '^again-'"
ok "the daemon keeps working with the old config" sh -c "ls '$T/publish' | grep -q '^again-'"
cp "$T/good.conf" "$T/ladderd.conf"
wait_for 10 sh -c "grep -q 'config reloaded' '$T/daemon.log'"
ok "fixing the file reloads it (file change seen)" grep -q 'config reloaded' "$T/daemon.log"

# A watch folder removed and re-created is watched again.
rmdir "$T/ingest" 2>/dev/null || rm -rf "$T/ingest"
mkdir "$T/ingest"
wait_for 10 sh -c "grep -q 'is back' '$T/daemon.log'"
echo back >"$T/back.mp4"
cp "$T/back.mp4" "$T/ingest/back.mp4"
wait_for 10 sh -c "ls '$T/publish' | grep -q '^back-'"
ok "a re-created watch folder is watched again" sh -c "ls '$T/publish' | grep -q '^back-'"

stop_daemon
is "$?" 0 "SIGTERM: the daemon exits 0"
like "$(cat "$T/daemon.log")" 'job=copied-[0-9a-f]{6}: queued' "the log has one line per state change with the task id"
done_testing
