#!/bin/sh
# Operator commands on a running daemon (issue 17): `ladderd status` lists a
# queued, a running and a failed task as their status files say (and
# --json parses); `ladderd cancel` of a queued and of a running task ends
# both failed with reason "cancelled" (an event like every other, also
# delivered to the webhook's outbox), no worker left, the source in
# failed/<id>/; `ladderd retry` of a task that failed once completes under
# the same id, seq going on, with exactly one "complete" event. Internal
# unit names never show.
. "$(dirname "$0")/lib.sh"

trap 'kill_all; _cleanup' EXIT
start_receiver receiver --quiet || bail_out "no webhook receiver"
write_conf "$T/ladderd.conf" "
max_jobs = 1;
watch = ( { path = \"$T/ingest\"; profile = \"wait\"; },
          { path = \"$T/ingest2\"; profile = \"once\"; } );
notify = { webhook = \"http://127.0.0.1:$PORT/hook\"; timeout = 2; };
profiles = {
  wait = { ladder = ( { name = \"a\"; height = 90; bitrate = 100; } );
    workflow = { pre = (); post = ( \"t_record\", \"publish\" );
      rendition = ( { stage = \"t_wait\"; args = { wait_rung = \"a\"; }; } ); }; };
  once = { ladder = ( { name = \"a\"; height = 90; bitrate = 100; } );
    workflow = { pre = ( { stage = \"t_fail\"; args = { fail_once_file = \"$T/failed-once\"; fail_message = \"made to fail once\"; }; } );
      rendition = ( \"t_record\" ); post = ( \"t_record\", \"publish\" ); }; };
};"
mkdir -p "$T/ingest2"
start_daemon "$T/ladderd.conf" || bail_out "daemon did not start"
L() { "$LADDERD" "$@" -c "$T/ladderd.conf"; }

# A running task (its rung waits until cancelled) and a queued one (max_jobs 1).
echo one >"$T/ingest/run.bin"
wait_for 10 sh -c "ls '$T/status' | grep -q '^run-'"
RUN=$(task_ids_for run)
wait_for 20 sh -c "find '$T/spool/tasks/$RUN' -name wait.started | grep -q ."
echo two >"$T/ingest/queued.bin"
wait_for 10 sh -c "ls '$T/status' | grep -q '^queued-'"
Q=$(task_ids_for queued)
# A failed task: made to fail once by t_fail (its retry below passes).
echo three >"$T/ingest2/flaky.bin"
wait_for 10 sh -c "ls '$T/status' | grep -q '^flaky-'"
F=$(task_ids_for flaky)

# --- status -----------------------------------------------------------------
# The flaky task waits behind the running one: cancel nothing yet, list.
L status >"$T/st.txt" 2>&1
like "$(cat "$T/st.txt")" "daemon running \\(pid $DAEMON_PID\\)" "status says the daemon runs, with its pid"
like "$(cat "$T/st.txt")" "$RUN +running +[-0-9%]+ +[0-9T:.Z-]+ transcoding" "status: the running task and its stage"
like "$(cat "$T/st.txt")" "$Q +queued " "status: the queued task"
L status --json >"$T/st.json"
ok "status --json parses" "$PY" -c "import json,sys; json.load(open(sys.argv[1]))" "$T/st.json"
got=$("$PY" - "$T/st.json" "$T/status" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
for t in d["tasks"]:
    st = json.load(open("%s/%s/status.json" % (sys.argv[2], t["task_id"])))
    if t["stage"] != st["state"] or t["time"] != st["time"] or t["progress"] != st["progress"]:
        bad.append(t["task_id"])
print("ok" if d["daemon"]["running"] and not bad else "differ: %s" % bad)
PY
)
is "$got" ok "status --json matches each task's status.json"
L status "$RUN" >"$T/one.txt"
like "$(cat "$T/one.txt")" "task $RUN: running, transcoding" "status ID: the task's state"
like "$(cat "$T/one.txt")" " 2 [0-9T:.Z-]+ transcoding" "status ID shows its last events"
ok "no internal unit names in status" sh -c "! grep -Eq '_decode|_group' '$T/st.txt' '$T/one.txt' '$T/st.json'"

# --- cancel a queued task -----------------------------------------------------
L cancel "$Q" >"$T/cq.out" 2>&1
is "$?" 0 "cancel of a queued task succeeds"
is "$(state_of "$Q")" failed "the cancelled queued task is failed"
is "$(json "$T/status/$Q/status.json" 'd["error"]["message"]')" cancelled "its error says cancelled"
is "$(json "$T/status/$Q/status.json" 'd.get("reason")')" cancelled "its failed event's reason is cancelled"
ok "the queued task's source is in failed/" test -s "$T/failed/$Q/queued.bin"
is "$(json "$T/failed/$Q/error.json" 'd["message"]')" cancelled "failed/ID/error.json says cancelled"
ok "no queue marker left" sh -c "! ls '$T/spool/queue' | grep -q '$Q'"

# --- cancel the running task ----------------------------------------------------
L cancel "$RUN" >"$T/cr.out" 2>&1
is "$?" 0 "cancel of a running task succeeds (returns when it has stopped)"
is "$(state_of "$RUN")" failed "the cancelled running task is failed"
is "$(json "$T/status/$RUN/status.json" 'd["error"]["message"]+"/"+d["reason"]')" "cancelled/cancelled" "its failed event: reason cancelled"
ok "no worker of the task left" sh -c "! pgrep -f 'ladderd (job|rung|group).*/$RUN' >/dev/null"
ok "the running task's source is in failed/" test -s "$T/failed/$RUN/run.bin"
# delivered() ID: the receiver got the task's failed event with reason cancelled.
delivered() {
	"$PY" - "$T/receiver.jsonl" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = r.get("body", r)
    b = json.loads(b) if isinstance(b, str) else b
    if b.get("task_id") == sys.argv[2] and b.get("state") == "failed" and b.get("reason") == "cancelled":
        sys.exit(0)
sys.exit(1)
PY
}
ok "the cancel event of the queued task reaches the webhook like every event" wait_for 20 delivered "$Q"
ok "the cancel event of the running task reaches the webhook" wait_for 20 delivered "$RUN"
L cancel "$RUN" >"$T/cr2.out" 2>&1
is "$?" 1 "cancelling it again is refused"
like "$(cat "$T/cr2.out")" "already failed" "... saying it already failed"

# --- retry ----------------------------------------------------------------------
wait_state "$F" failed 20
ok "the flaky task failed once" test -s "$T/failed/$F/flaky.bin"
seq1=$(json "$T/status/$F/status.json" 'd["seq"]')
L retry "$F" >"$T/rt.out" 2>&1
is "$?" 0 "retry of a failed task succeeds"
wait_state "$F" complete 30
is "$(state_of "$F")" complete "the retried task completes under the same id"
got=$("$PY" - "$T/status/$F/events.ndjson" "$seq1" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
seqs = [e["seq"] for e in ev]
bad = []
if seqs != list(range(1, len(seqs) + 1)): bad.append("seq not 1..n: %s" % seqs)
if sum(1 for e in ev if e["state"] == "complete") != 1: bad.append("complete events != 1")
after = [e for e in ev if e["seq"] == int(sys.argv[2]) + 1]
if not after or after[0].get("retried") != 1 or after[0]["state"] != "queued": bad.append("no queued event with retried=1 after the failure")
print("ok" if not bad else "; ".join(bad))
PY
)
is "$got" ok "seq goes on after the failure, the retry says so, exactly one complete"
ok "the failed folder entry is gone" test ! -e "$T/failed/$F"
ok "the package is published" test -s "$T/publish/$F/renditions.json"
L status "$F" >"$T/f.txt"
like "$(cat "$T/f.txt")" "rung a +[a-z]+ +100%" "status ID lists the task's rungs"
L retry "$F" >"$T/rt2.out" 2>&1
is "$?" 1 "retry of a complete task is refused"
L retry nosuch >"$T/rt3.out" 2>&1
is "$?" 1 "retry of an unknown task is refused"

# --- the daemon stopped: status still works ------------------------------------
stop_daemon
L status >"$T/st2.txt" 2>&1
is "$?" 0 "status works with the daemon stopped"
like "$(cat "$T/st2.txt")" "daemon not running" "... and says it is not running"
like "$(cat "$T/st2.txt")" "$F +complete" "... and lists the complete task"
like "$(cat "$T/st2.txt")" "$RUN +failed .*cancelled" "... and the cancelled one"
# A request made while no daemon runs waits on disk for its next start.
seq2=$(json "$T/status/$RUN/status.json" 'd["seq"]')
L retry "$RUN" >"$T/off.out" 2>&1
is "$?" 75 "retry with the daemon stopped: exit 75"
like "$(cat "$T/off.out")" "daemon is not running: the request waits" "... saying the request waits for it"
start_daemon "$T/ladderd.conf"
ok "the daemon carries the waiting request out at start" wait_for 20 sh -c "grep -q '\"seq\": *$((seq2 + 1)),.*\"retried\": *1' '$T/status/$RUN/events.ndjson'"
ok "and replies to nobody: the request is gone" sh -c "! ls '$T/spool/requests' | grep -q ."
stop_daemon
done_testing
