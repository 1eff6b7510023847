#!/bin/sh
# Chunked encoding on the Slurm runner, against a real single-node cluster
# (munged, slurmctld, slurmd) that this test starts under $T and stops:
#   1. a 30 s source, segment_duration 2, chunk_duration 10: `ladderd run`
#      on Slurm gives a package byte-identical to the local runner's
#      chunked one (one x264 thread each), and every chunk ran as a Slurm
#      job step of its own: status.json names a distinct Slurm job per
#      chunk unit and for the join, each a job Slurm ran under that unit's
#      name;
#   2. the daemon on Slurm (one unit at a time), kill -9 of srun, the job
#      and the daemon once chunk 0 has finished, restart: the finished chunk is reused (not
#      encoded again), the task completes once, no Slurm job of it is left.
. "$(dirname "$0")/lib.sh"
require ffmpeg
start_slurm

PROFILE='segment_duration = 2; chunk_duration = 10;
    video = { preset = "ultrafast"; };
    ladder = ( { name = "180p"; height = 180; bitrate = 300; } );'
write_conf "$T/ladderd.conf" "
rung_threads = 1;
slurm = { partition = \"debug\"; cpus_per_unit = 1; max_units = 1; };
watch = ( { path = \"$T/ingest\"; profile = \"onslurm\"; } );
profiles = {
  onlocal = { runner = \"local\"; $PROFILE };
  onslurm = { runner = \"slurm\"; $PROFILE };
};"
mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=320x180:rate=25:duration=30 \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=30 \
	-c:v libx264 -preset ultrafast -g 37 -pix_fmt yuv420p -c:a aac -shortest

# --- 1. chunks as Slurm steps, same package as the local runner's ----------
"$LADDERD" run -c "$T/ladderd.conf" -p onlocal "$T/src.mp4" -o "$T/outL" \
	--task-id same >"$T/L.out" 2>&1
is "$?" 0 "the local runner's chunked run completes"
"$LADDERD" run -c "$T/ladderd.conf" -p onslurm "$T/src.mp4" -o "$T/outS" \
	--task-id same >"$T/S.out" 2>&1
is "$?" 0 "the Slurm runner's chunked run completes (verified)"
is "$(json "$T/outS/.ladderd/status/same/status.json" '[d["rungs"]["180p"]["chunks_done"], d["rungs"]["180p"]["chunks"]]')" \
	"[3, 3]" "status.json: rung 180p, chunks_done 3 of 3"
ok "the two packages are byte-identical (playlists, MPD, segments)" \
	diff -r "$T/outL/same" "$T/outS/same"
"$PY" - "$T/outS/.ladderd/status/same/status.json" >"$T/units" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for name, r in sorted(d["rungs"].items()):
    u = r.get("unit", {})
    print(name, u.get("runner"), int(u.get("slurm_job_id", -1)))
PY
is "$(awk '{ print $1 }' "$T/units" | tr '\n' ' ')" \
	"180p 180p.chunk000 180p.chunk001 180p.chunk002 audio " \
	"status.json has a unit per chunk, the join and the audio"
is "$(awk '{ print $2 }' "$T/units" | sort -u)" "slurm" "every unit ran on Slurm"
is "$(awk '{ print $3 }' "$T/units" | sort -u | wc -l)" 5 \
	"each unit was a Slurm job of its own (5 distinct job ids)"
bad=0
while read -r name runner id; do
	jn=$(scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobName=\([^ ]*\).*/\1/p')
	case "$jn" in ladderd-same-"$name"-*) ;; *) bad=1; echo "# $name: job $id is '$jn'" ;; esac
done <"$T/units"
is "$bad" 0 "Slurm ran each of those jobs under its unit's name"

# --- 2. kill -9 after a chunk finished, restart ------------------------------
start_daemon "$T/ladderd.conf"
cp "$T/src.mp4" "$T/ingest/.crash.mp4.part" && mv "$T/ingest/.crash.mp4.part" "$T/ingest/crash.mp4"
wait_for 20 sh -c "ls '$T/status' | grep -q '^crash-'"
TASK=$(task_ids_for crash)
# Done and reaped (the chord's event says so): srun killed before the
# chord saw it exit would fail the unit, whatever it left.
chunk0_ok() {
	grep -q '"status":[[:space:]]*"ok"' \
		"$T/spool/tasks/$TASK/rungs/180p.chunk000/result.json" 2>/dev/null &&
		grep -q '"chunks_done":[[:space:]]*1' "$T/status/$TASK/events.ndjson"
}
wait_for 120 chunk0_ok
ok "chunk 0 finished on the cluster" chunk0_ok
pkill -KILL -f "srun .*ladderd-$TASK-" 2>/dev/null
pkill -KILL -f "[l]adderd job .*$T/" 2>/dev/null
kill -KILL "$DAEMON_PID" 2>/dev/null
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
before=$(md5sum <"$T/spool/tasks/$TASK/rungs/180p.chunk000/result.json")
# srun killed after its step ended leaves the job's allocation behind,
# under the finished unit's name: stand in for it with a job of that
# name. The restart reuses chunk 0 without starting it, and
# must still cancel what is left of it.
jid0=$(json "$T/status/$TASK/status.json" 'd["rungs"]["180p.chunk000"]["unit"]["slurm_job_id"]')
name0=$(scontrol show job "$jid0" 2>/dev/null | grep -o 'JobName=[^ ]*' | cut -d= -f2)
like "$name0" "^ladderd-$TASK-180p\.chunk000-" "chunk 0's Slurm job name is known ($name0)"
sbatch --job-name="$name0" --output=/dev/null --wrap 'sleep 600' \
	>"$T/sbatch.out" 2>&1 || sed 's/^/# sbatch: /' "$T/sbatch.out"
wait_for 20 sh -c "squeue -h -o '%j' | grep -qx '$name0'"
ok "a left-over job under chunk 0's name is on the cluster" \
	sh -c "squeue -h -o '%j' | grep -qx '$name0'"
echo "=== restart" >>"$T/daemon.log"
start_daemon "$T/ladderd.conf"
wait_state "$TASK" complete 180
is "$(state_of "$TASK")" complete "after the restart the task completes"
is "$(grep -c '"state":[[:space:]]*"complete"' "$T/status/$TASK/events.ndjson")" 1 \
	"it completed exactly once"
like "$(sed -n '/=== restart/,$p' "$T/daemon.log")" \
	"rendition=180p.chunk000: finished in an earlier run, reusing it" \
	"the restarted task reused chunk 0"
ok "and cancelled the job left under its name" \
	sh -c "! squeue -h -o '%j' | grep -qx '$name0'"
is "$(grep -c 'rendition=180p.chunk000: ok' "$T/daemon.log")" 1 \
	"chunk 0 was encoded once"
like "$(sed -n '/=== restart/,$p' "$T/daemon.log")" "rendition=180p.chunk002: ok" \
	"the chunks left (one at a time: max_units 1) ran after the restart"
jobs0=$(json "$T/status/$TASK/status.json" 'd["rungs"]["180p.chunk000"]["unit"]["slurm_job_id"]')
ok "chunk 0's unit detail still names its one Slurm job ($jobs0)" test -n "$jobs0"
stop_daemon
wait_for 20 sh -c "[ -z \"\$(squeue -h -o '%j' | grep '^ladderd-$TASK-')\" ]"
is "$(live_jobs "ladderd-$TASK-")" "" "no Slurm job of the task is left running"
[ -n "$before" ]
[ "$_failed" = 0 ] || grep -v debug "$T/daemon.log" | tail -n 30 | sed 's/^/#   /'
done_testing
