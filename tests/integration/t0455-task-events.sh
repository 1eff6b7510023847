#!/bin/sh
# t0455-task-events: what a task's events say (issue 18 items 6, 7, 10).
# A real `ladderd run` (transcode, then chunk_hls, per rung): each rung's
# progress never goes back; a rung retried says so (rung_state
# "retrying") before its progress starts again. Events and status.json
# carry `started` and `elapsed` for the task and for each rung, and the
# terminal event's renditions their elapsed seconds. A failed task's events
# name no outputs; error.stage is the stage that failed, with `rung` set
# when a rung failed. Foreground log lines carry a timestamp unless stderr
# is the journal (JOURNAL_STREAM names it).
. "$(dirname "$0")/lib.sh"

require ffmpeg
write_conf "$T/ladderd.conf" '
profiles = {
  default = { segment_duration = 1; dash = false;
    ladder = ( { name = "90p"; height = 90; bitrate = 100; },
               { name = "60p"; height = 60; bitrate = 80; } ); };
  flaky = { ladder = ( { name = "a"; height = 90; bitrate = 100; } );
    workflow = { pre = (); post = ( "t_record", "publish" );
      rendition = ( "t_record", { stage = "t_flaky"; args = { flaky_rung = "a"; }; },
                    "notify" ); }; };
  crash = { ladder = ( { name = "a"; height = 90; bitrate = 100; },
                       { name = "b"; height = 60; bitrate = 80; } );
    workflow = { pre = (); post = ( "t_record", "publish" );
      rendition = ( { stage = "t_crash"; args = { crash_rung = "b"; }; } ); }; };
  prefail = { workflow = { pre = ( { stage = "t_fail"; args = { fail_message = "no"; }; } ); }; };
};'
mkclip_av "$T/in.mp4" 160x90 2 ||
	bail_out "cannot make a clip"
ST="$T/out/.ladderd/status"
run() { # ID [ARGS...]
	local id=$1
	shift
	(unset JOURNAL_STREAM; "$LADDERD" run -c "$T/ladderd.conf" "$@" -o "$T/out" \
		--task-id "$id" >"$T/$id.out" 2>"$T/$id.err")
	rc=$?
}
# check ID: run the python on stdin over the task's events (list `ev`) and
# status.json (`st`); it prints "ok" or what is wrong.
check() {
	cat >"$T/check.py"
	"$PY" -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1] + "/events.ndjson")]
st = json.load(open(sys.argv[1] + "/status.json"))
def num(x): return isinstance(x, (int, float)) and not isinstance(x, bool)
exec(open(sys.argv[2]).read())' "$ST/$1" "$T/check.py"
}

# --- a real run ------------------------------------------------------------
run real "$T/in.mp4"
is "$rc" 0 "a real run completes"
[ "$rc" = 0 ] || tail -n 30 "$T/real.err" | sed 's/^/#   /'
got=$(check real <<'PY'
bad = []
last = {}
for e in ev:
    q, p = e.get("quality"), e.get("progress")
    if q is None or not num(p):
        continue
    # A retry restarts the rung and says so (checked with t_flaky below);
    # under a loaded machine a real rung may be retried too.
    if e.get("rung_state") == "retrying":
        print("retried: %s: %s" % (q, e.get("reason")), file=sys.stderr)
        last[q] = 0
        continue
    if p < last.get(q, 0):
        bad.append("%s: %s after %s (seq %d)" % (q, p, last[q], e["seq"]))
    last[q] = p
print("; ".join(bad) or "ok")
PY
)
is "$got" ok "progress never goes back within a rung"
got=$(check real <<'PY'
bad = [e["seq"] for e in ev if not isinstance(e.get("started"), str)
       or not num(e.get("elapsed"))]
print("missing in seq %s" % bad if bad else "ok")
PY
)
is "$got" ok "every event of a running task carries its started (time) and elapsed (s)"
got=$(check real <<'PY'
e = [x for x in ev if x.get("quality") == "90p"][-1]
print("ok" if isinstance(e.get("rung_started"), str)
      and num(e.get("rung_elapsed")) and e["rung_elapsed"] >= 0 else e)
PY
)
is "$got" ok "rung events carry rung_started and rung_elapsed"
got=$(check real <<'PY'
el = [x["elapsed"] for x in ev]
print("ok" if el == sorted(el) and ev[-1]["elapsed"] > 0 else el)
PY
)
is "$got" ok "the task's elapsed grows, and is > 0 at the end"
got=$(check real <<'PY'
r = st["rungs"]
good = all(isinstance(r[q].get("started"), str) and num(r[q].get("elapsed"))
           for q in ("90p", "60p"))
good = good and st["started"] == ev[-1]["started"] \
    and st["elapsed"] == ev[-1]["elapsed"]
print("ok" if good else st)
PY
)
is "$got" ok "status.json: started/elapsed for the task and each rung"
got=$(check real <<'PY'
r = ev[-1]["renditions"]
print("ok" if all(num(x.get("elapsed")) for x in r) else r)
PY
)
is "$got" ok "the complete event gives each rendition its elapsed seconds"
like "$(head -n 1 "$T/real.err")" \
	'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z ladderd\[[0-9]+\]: ' \
	"foreground log lines start with a timestamp (JOURNAL_STREAM unset)"
: >"$T/journal.err"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/journal.err") "$LADDERD" run -c "$T/ladderd.conf" \
	"$T/in.mp4" -o "$T/out" --task-id journal >/dev/null 2>>"$T/journal.err"
like "$(head -n 1 "$T/journal.err")" '^ladderd\[[0-9]+\]: ' \
	"no timestamp when stderr is the journal (JOURNAL_STREAM names it)"

# --- a retried rung ------------------------------------------------------
run flaky -p flaky "$T/in.mp4"
is "$rc" 0 "a rung that fails once completes on retry"
got=$(check flaky <<'PY'
a = [(e.get("rung_state"), e.get("progress")) for e in ev
     if e.get("quality") == "a"]
i = [k for k, x in enumerate(a) if x[0] == "retrying"]
good = len(i) == 1 and a[i[0]][1] == 0 \
    and any(p == 1 for _, p in a[:i[0]]) \
    and any(p == 1 for _, p in a[i[0] + 1:])
print("ok" if good else a)
PY
)
is "$got" ok "a retry is said (rung_state retrying, progress 0) before progress starts again"

# --- failures ------------------------------------------------------------
run crash -p crash "$T/in.mp4"
is "$rc" 1 "a crashing rung fails the task"
got=$(check crash <<'PY'
print(json.dumps(ev[-1]["error"], sort_keys=True))
PY
)
is "$got" '{"message": "worker killed by signal 11 (Segmentation fault)", "rung": "b", "stage": "t_crash"}' \
	"error.stage is the stage that failed, error.rung the rung"
got=$(check crash <<'PY'
print([e["seq"] for e in ev if e["state"] == "failed" and "outputs" in e] or "ok")
PY
)
is "$got" ok "the failed event names no outputs"
like "$(cat "$T/crash.err")" "failed: t_crash rendition=b: worker killed by signal 11" \
	"run says which stage of which rung failed"
run prefail -p prefail "$T/in.mp4"
got=$(check prefail <<'PY'
print(json.dumps(ev[-1]["error"], sort_keys=True), "outputs" in ev[-1])
PY
)
is "$got" '{"message": "no", "stage": "t_fail"} False' \
	"a pre stage failure: its stage, no rung, no outputs"
done_testing
