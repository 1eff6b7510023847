#!/bin/sh
# The Slurm runner against a real single-node cluster (munged, slurmctld,
# slurmd) that this test starts under $T and stops again:
#   1. `ladderd run` on Slurm gives a package byte-identical to the local
#      runner's, every rung a Slurm step (job ids match what Slurm knows);
#   1b. the shared decode's group runs as one Slurm step (one job for the
#      decoder and its rungs, which read its frames on the node);
#   2. a unit scancel'ed while it runs is retried and the task completes;
#   3. a unit over its time limit fails the task, naming rung and limit;
#   4. the daemon drains a 10-drop burst on Slurm, each task complete once;
#   5. kill -9 of srun, the job and the daemon mid-task, restart: the task
#      completes once and no step of it is left running;
#   5b. `ladderd cancel` of a task whose unit runs on the cluster: the
#      task ends failed ("cancelled"), its Slurm job is gone;
#   6. check-config refuses runner = "slurm" without srun.
. "$(dirname "$0")/lib.sh"
require ffmpeg
start_slurm

# --- 1. byte-identical packages, every rung a Slurm step ----------------
PROFILE='
    segment_duration = 1;
    shared_decode = false;
    ladder = ( { name = "360p"; height = 360; bitrate = 600; },
               { name = "240p"; height = 240; bitrate = 300; } );'
# x264 is repeatable with one thread (frame threads with VBV are not), so
# both runners get exactly one.
write_conf "$T/media.conf" "
max_jobs = 2;
rung_threads = 1;
slurm = { partition = \"debug\"; };
watch = ( { path = \"$T/ingest\"; profile = \"onslurm\"; } );
profiles = {
  onlocal = { runner = \"local\"; $PROFILE };
  onslurm = { runner = \"slurm\"; $PROFILE };
};"
mkclip_av "$T/clip.mp4" 640x360 2
"$LADDERD" run -c "$T/media.conf" -p onlocal "$T/clip.mp4" -o "$T/outL" \
	--task-id same >"$T/L.out" 2>&1
is "$?" 0 "the local runner's run completes"
"$LADDERD" run -c "$T/media.conf" -p onslurm "$T/clip.mp4" -o "$T/outS" \
	--task-id same >"$T/S.out" 2>&1
is "$?" 0 "the Slurm runner's run completes"
ok "the two packages are byte-identical (playlists, MPD, segments)" \
	diff -r "$T/outL/same" "$T/outS/same"
ok "the package has segments" sh -c "ls '$T/outS/same'/*/ | grep -q ."
ST="$T/outS/.ladderd/status/same/status.json"
"$PY" - "$ST" >"$T/units" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for name, r in sorted(d["rungs"].items()):
    u = r.get("unit", {})
    print(name, u.get("runner"), int(u.get("slurm_job_id", -1)), u.get("host"))
PY
is "$(awk '{ print $2 }' "$T/units" | sort -u)" "slurm" "every rung's status says runner slurm"
is "$(wc -l <"$T/units")" "3" "status.json has the 3 units (2 rungs, audio)"
bad=0
while read -r name runner id host; do
	jn=$(scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobName=\([^ ]*\).*/\1/p')
	case "$jn" in ladderd-same-"$name"-*) ;; *) bad=1; echo "# $name: job $id is '$jn'" ;; esac
done <"$T/units"
is "$bad" 0 "each rung's Slurm job id is a job Slurm ran under that rung's name"
"$PY" - "$T/outL/.ladderd/status/same/status.json" >"$T/unitsL" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sorted({r.get("unit", {}).get("runner") for r in d["rungs"].values()}))
PY
is "$(cat "$T/unitsL")" "['local']" "the local run's status says runner local"

# --- 1b. the shared decode's group as one step -----------------------------
write_conf "$T/group.conf" "
slurm = { partition = \"debug\"; cpus_per_unit = 2; };
profiles = { grp = { runner = \"slurm\"; segment_duration = 1;
  ladder = ( { name = \"360p\"; height = 360; bitrate = 600; },
             { name = \"240p\"; height = 240; bitrate = 300; } ); }; };"
"$LADDERD" run -c "$T/group.conf" -p grp "$T/clip.mp4" -o "$T/outG" \
	--task-id grp >"$T/G.out" 2>&1
is "$?" 0 "a shared-decode run on Slurm completes (verified)"
like "$(cat "$T/G.out")" "shared decoder for 2 rungs, the group runs as one unit" \
	"the decoder and its rungs are planned as one unit"
"$PY" - "$T/outG/.ladderd/status/grp/status.json" >"$T/gunits" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["renditions"]:
    print(r["name"], r.get("decoder", "-"), int(r["unit"]["slurm_job_id"]))
PY
is "$(awk '$1 != "audio" { print $2 }' "$T/gunits" | sort -u)" "shared" \
	"every video rung read the shared decoder's frames"
is "$(awk '{ print $3 }' "$T/gunits" | sort -u | wc -l)" 1 \
	"all units ran in one Slurm job"
gid=$(awk 'NR == 1 { print $3 }' "$T/gunits")
like "$(scontrol show job "$gid" 2>/dev/null)" "JobName=ladderd-grp-group-" \
	"Slurm knows that job as the task's group"
ok "the group's ring is gone from /dev/shm" \
	sh -c "! ls /dev/shm | grep -q 'ladderd-grp-'"

# --- 2, 3. scancel of a running unit; the time limit ----------------------
LADDER='ladder = ( { name = "a"; height = 720; bitrate = 2000; },
	{ name = "b"; height = 480; bitrate = 1000; } );'
write_conf "$T/stages.conf" "
rung_timeout = 3;
runner = \"slurm\";
slurm = { partition = \"debug\"; cpus_per_unit = 1; };
watch = ( { path = \"$T/ingest2\"; profile = \"cancel\"; } );
profiles = {
  cancel = {
    $LADDER
    workflow = { pre = (); rendition = ( { stage = \"t_wait\"; args = { wait_rung = \"b\"; }; } ); post = ( \"t_record\", \"publish\" ); };
  };
  hang = {
    $LADDER
    workflow = { pre = (); rendition = ( { stage = \"t_hang\"; args = { hang_rung = \"b\"; }; } ); post = ( \"t_record\", \"publish\" ); };
  };
};"
# rung_timeout is 3 s here: t_wait is cancelled long before that.
echo "not media, the test stages do not read it" >"$T/input.bin"
"$LADDERD" run -c "$T/stages.conf" -p cancel "$T/input.bin" -o "$T/outC" \
	--task-id cx >"$T/cx.out" 2>&1 &
RUNPID=$!
wait_for 20 test -e "$T/outC/.ladderd/work/cx/rungs/b/wait.started" ||
	find "$T/outC" -name wait.started >"$T/found"
marker=$(find "$T/outC" -name wait.started 2>/dev/null | head -n 1)
ok "the unit b started on the cluster" test -n "$marker"
first=$(live_jobs ladderd-cx-b-)
ok "its Slurm job is running" test -n "$first"
scancel $first
wait "$RUNPID"
is "$?" 0 "after scancel the unit is retried and the task completes"
R="$T/outC/cx/renditions.json"
is "$(json "$R" 'd[1]["t_wait"]')" "passed after a cancel" "the retry of b passed"
second=$(json "$R" 'int(d[1]["unit"]["slurm_job_id"])')
ok "the retry ran as a new Slurm job ($first -> $second)" test "$second" != "$first"
like "$(cat "$T/cx.out")" "rung b: its Slurm job was cancelled" \
	"the log says the Slurm job was cancelled"

"$LADDERD" run -c "$T/stages.conf" -p hang "$T/input.bin" -o "$T/outH" \
	--task-id hx >"$T/hx.out" 2>&1
is "$?" 1 "a unit over its time limit fails the task"
like "$(cat "$T/hx.out")" "rung b: stopped at the time limit of 3 s" \
	"the reason names the rung and the limit"
wait_for 20 sh -c "[ -z \"\$(squeue -h -o '%j' | grep '^ladderd-hx-')\" ]"
is "$(live_jobs ladderd-hx-)" "" "no Slurm job of the failed task is left"

# --- 4. the daemon drains a burst on Slurm ----------------------------------
mkdir -p "$T/ingest" "$T/drops"
mkclip_av "$T/short.mp4" 320x240 1
for i in 0 1 2 3 4 5 6 7 8 9; do cp "$T/short.mp4" "$T/drops/burst$i.mp4"; done
start_daemon "$T/media.conf"
for f in "$T"/drops/*.mp4; do mv "$f" "$T/ingest/"; done
all_done() {
	[ "$(grep -l '"state":[[:space:]]*"complete"' "$T"/status/burst*/status.json 2>/dev/null | wc -l)" -ge 10 ]
}
wait_for 240 all_done
ok "10 drops on Slurm: all complete" all_done
once=$(cat "$T"/status/burst*/events.ndjson | grep -c '"state":[[:space:]]*"complete"')
is "$once" 10 "each task completed exactly once"
is "$(ls "$T/failed" | wc -l)" 0 "nothing failed"
slurm_rungs=$(cat "$T"/status/burst*/status.json | grep -o '"runner":[[:space:]]*"slurm"' | wc -l)
ok "their rungs ran on Slurm ($slurm_rungs units)" test "$slurm_rungs" -ge 20
stop_daemon
is "$?" 0 "the daemon stops cleanly"

# --- 5. kill -9 mid-task, restart --------------------------------------------
mkdir -p "$T/ingest2"
start_daemon "$T/stages.conf"
cp "$T/input.bin" "$T/ingest2/crash.bin"
wait_for 30 sh -c "find '$T/spool' -name wait.started | grep -q ."
ok "the unit is waiting on the cluster" sh -c "find '$T/spool' -name wait.started | grep -q ."
TASK=$(task_ids_for crash)
before=$(live_jobs "ladderd-$TASK-b-")
ok "its Slurm job runs ($before)" test -n "$before"
# The crash: srun, the job process and the daemon, all at once, so nobody
# tells Slurm; the step itself goes on running on the node.
pkill -KILL -f "srun .*ladderd-$TASK-" 2>/dev/null
pkill -KILL -f "[l]adderd job .*$T/" 2>/dev/null
kill -KILL "$DAEMON_PID" 2>/dev/null
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
ok "the orphaned step is still running after the crash" \
	test -n "$(live_jobs "ladderd-$TASK-b-")"
start_daemon "$T/stages.conf"
wait_state "$TASK" complete 60
is "$(state_of "$TASK")" "complete" "after the restart the task completes"
is "$(grep -c '"state":[[:space:]]*"complete"' "$T/status/$TASK/events.ndjson")" 1 \
	"it completed exactly once"
wait_for 20 sh -c "[ -z \"\$(squeue -h -o '%j' | grep '^ladderd-$TASK-')\" ]"
is "$(live_jobs "ladderd-$TASK-")" "" "no Slurm job of the task is left running"
ok "the orphaned job $before is gone" sh -c "! squeue -h -o %i | grep -qx '$before'"
is "$(ls "$T/ingest2" | wc -l)" 0 "the ingest folder is empty"

# --- 5b. ladderd cancel reaches the unit on the cluster ------------------------
cp "$T/input.bin" "$T/ingest2/stopme.bin"
wait_for 30 sh -c "find '$T/spool' -name wait.started | grep -q ."
CT=$(task_ids_for stopme)
ok "the unit to cancel runs on the cluster" test -n "$(live_jobs "ladderd-$CT-b-")"
"$LADDERD" cancel -c "$T/stages.conf" "$CT" >"$T/cancel.out" 2>&1
is "$?" 0 "ladderd cancel of the task succeeds"
is "$(json "$T/status/$CT/status.json" 'd["state"]+"/"+d["reason"]')" "failed/cancelled" \
	"the task ended failed, reason cancelled"
wait_for 20 sh -c "[ -z \"\$(squeue -h -o '%j' | grep '^ladderd-$CT-')\" ]"
is "$(live_jobs "ladderd-$CT-")" "" "no Slurm job of the cancelled task is left"
ok "its source is in failed/" test -s "$T/failed/$CT/stopme.bin"
stop_daemon

# --- 6. check-config without srun ---------------------------------------------
write_conf "$T/nosrun.conf" "runner = \"slurm\"; slurm = { srun = \"$T/no/srun\"; };"
"$LADDERD" check-config -c "$T/nosrun.conf" >"$T/cc.out" 2>&1
is "$?" 1 "check-config refuses runner = slurm without srun"
like "$(cat "$T/cc.out")" "slurm +ERROR .*no/srun' not found" "and says srun was not found"
"$LADDERD" check-config -c "$T/media.conf" >"$T/cc2.out" 2>&1
like "$(cat "$T/cc2.out")" "slurm +ok" "check-config: the test cluster answers"
like "$(cat "$T/cc2.out")" "every node mounts at the same paths" \
	"check-config says the folders must be shared"
done_testing
