#!/bin/sh
# t0460-daemon-keep-source: what happens to the original (issue 18 item 9).
# keep_source = "delete" (the default): after success the drop, and a
# manifest's local source, are deleted and the log says so. On failure the
# manifest's source is kept in failed/<id>/ under its own name (a file,
# not a folder named like one). keep_source = "archive" (the config file
# changed under the running daemon): after success the drop, or the
# manifest and its source, are moved to archive/<id>/ under their names.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

profiles="profiles = {
  $(quick_profile download)
  failing = { workflow = { pre = ( \"download\", { stage = \"t_fail\"; args = { fail_message = \"refused\"; }; } ); }; };
};"
write_conf "$T/ladderd.conf" "watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
$profiles"
start_daemon "$T/ladderd.conf"
mkdir -p "$T/ingest/sub"
head -c 5000 /dev/urandom >"$T/orig-a.bin"
head -c 6000 /dev/urandom >"$T/orig-bad.bin"
head -c 7000 /dev/urandom >"$T/orig-b.bin"
head -c 8000 /dev/urandom >"$T/orig-c.bin"

# --- delete (default) ----------------------------------------------------
cp "$T/orig-a.bin" "$T/ingest/a.mp4.part" && mv "$T/ingest/a.mp4.part" "$T/ingest/a.mp4"
wait_for 15 sh -c "grep -q 'job=a-[0-9a-f]*: complete; source' '$T/daemon.log'"
id=$(task_ids_for a)
is "$(state_of "$id")" complete "delete: the task completes"
ok "delete: the drop is gone from the ingest folder" test ! -e "$T/ingest/a.mp4"
like "$(cat "$T/daemon.log")" "job=$id: complete; source 'a\\.mp4' deleted \\(keep_source = \"delete\"\\)" \
	"delete: the log says the source was deleted"

cp "$T/orig-bad.bin" "$T/ingest/sub/bad.mp4"
drop bad.json '{ "task_id": "bad", "source": "sub/bad.mp4", "profile": "failing" }'
wait_state bad failed 15
# The job reports failed, then the supervisor moves the drop and says so.
wait_for 10 grep -q 'job=bad: failed, moved to the failed folder' "$T/daemon.log"
ok "failure: failed/bad/bad.mp4 is the original file, under its name" \
	cmp "$T/failed/bad/bad.mp4" "$T/orig-bad.bin"
ok "failure: the manifest is kept too" test -f "$T/failed/bad/bad.json"
ok "failure: no folder named like the source" sh -c "! ls -d '$T/failed/bad/'*/ 2>/dev/null | grep -q ."

# --- archive (the config changes under the running daemon) -----------------
write_conf "$T/ladderd.conf.new" "watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
keep_source = \"archive\";
archive = \"$T/archive\";
$profiles"
mv "$T/ladderd.conf.new" "$T/ladderd.conf"
wait_for 15 grep -Eq 'config (not )?reloaded' "$T/daemon.log"
cp "$T/orig-b.bin" "$T/ingest/b.mp4.part" && mv "$T/ingest/b.mp4.part" "$T/ingest/b.mp4"
wait_for 15 sh -c "grep -q 'job=b-[0-9a-f]*: complete; source' '$T/daemon.log'"
id=$(task_ids_for b)
ok "archive: the drop is kept as archive/<id>/b.mp4" cmp "$T/archive/$id/b.mp4" "$T/orig-b.bin"
ok "archive: and gone from the ingest folder" test ! -e "$T/ingest/b.mp4"
like "$(cat "$T/daemon.log")" "job=$id: complete; source 'b\\.mp4' archived in '$T/archive/$id'" \
	"archive: the log says where"
cp "$T/orig-c.bin" "$T/ingest/sub/c.mp4"
drop m.json '{ "task_id": "m", "source": "sub/c.mp4", "profile": "quick" }'
wait_state m complete 15
# The supervisor's line comes after it archived (the job's own "complete"
# line comes before).
wait_for 10 grep -q 'job=m: complete; source' "$T/daemon.log"
ok "archive: a manifest's local source keeps its name" cmp "$T/archive/m/c.mp4" "$T/orig-c.bin"
ok "archive: beside the manifest" test -f "$T/archive/m/m.json"
ok "archive: nothing left in the ingest subfolder" test ! -e "$T/ingest/sub/c.mp4"
ok "the spool keeps no task folder" sh -c "[ -z \"\$(ls '$T/spool/tasks')\" ]"
stop_daemon
is "$?" 0 "SIGTERM: exit 0"
done_testing
