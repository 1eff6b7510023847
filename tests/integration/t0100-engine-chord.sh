#!/bin/sh
# The engine with test-only stages: chord concurrency limit, retry, crash,
# time limit, named arguments, ladder order, ABI gate, status events.
. "$(dirname "$0")/lib.sh"

LADDER='ladder = ( { name = "a"; height = 1080; bitrate = 4000; },
	{ name = "b"; height = 720; bitrate = 2000; },
	{ name = "c"; height = 480; bitrate = 1000; },
	{ name = "d"; height = 360; bitrate = 500; } );'
write_conf "$T/ladderd.conf" "
max_rungs = 2;
rung_timeout = 2;
profiles = {
  default = {
    $LADDER
    workflow = {
      pre = ( \"t_record\" );
      rendition = (
        { stage = \"t_record\"; args = { greeting = \"hello\"; record_sleep_ms = 500; }; },
        { stage = \"t_flaky\"; args = { flaky_rung = \"c\"; }; },
        \"notify\" );
      post = ( \"t_record\", \"publish\" );
    };
  };
  crash = {
    $LADDER
    workflow = { pre = (); rendition = ( { stage = \"t_crash\"; args = { crash_rung = \"b\"; }; } ); post = ( \"t_record\", \"publish\" ); };
  };
  hang = {
    $LADDER
    workflow = { pre = (); rendition = ( { stage = \"t_hang\"; args = { hang_rung = \"d\"; }; } ); post = ( \"t_record\", \"publish\" ); };
  };
  badabi = {
    $LADDER
    workflow = { pre = ( \"t_badabi\" ); rendition = ( \"t_record\" ); post = (); };
  };
};"
echo "not media, the test stages do not read it" >"$T/input.bin"
OUT="$T/out"

# 1. A good run.
"$LADDERD" run -c "$T/ladderd.conf" "$T/input.bin" -o "$OUT" --task-id good >"$T/good.out" 2>"$T/good.err"
is "$?" 0 "a task with test stages completes"
R="$OUT/good/renditions.json"
ok "post stage saw the renditions" test -s "$R"
is "$(json "$R" '[r["rung"]["name"] for r in d]')" '["a", "b", "c", "d"]' \
	"post stages see rung contexts in ladder order"
is "$(json "$R" '[r["t_record"]["greeting"] for r in d]')" \
	'["hello", "hello", "hello", "hello"]' "named arguments are in each rung's context"
is "$(json "$R" '[r["status"] for r in d]')" '["ok", "ok", "ok", "ok"]' "every rung ok"
is "$(json "$R" 'd[2]["t_flaky"]')" "passed on retry" "a rung failing once passes on retry"
# Concurrency from the recorded start/end times: at most 2, and 2 reached.
overlap=$(python3 - "$R" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ev = []
for r in d:
    ev.append((r["t_record"]["start_us"], 1))
    ev.append((r["t_record"]["end_us"], -1))
cur = peak = 0
for t, k in sorted(ev, key=lambda e: (e[0], e[1])):
    cur += k
    peak = max(peak, cur)
print(peak)
PY
)
is "$overlap" 2 "never more than max_rungs=2 rungs at once (and 2 were used)"
is "$(json "$R" 'sorted(set(r["t_record"]["pid"] for r in d)) == sorted(r["t_record"]["pid"] for r in d)')" \
	"true" "each rung ran in its own process"
EV="$OUT/.ladderd/status/good/events.ndjson"
seqs=$(python3 -c 'import json,sys; s=[json.loads(l)["seq"] for l in open(sys.argv[1])]; print(s == list(range(1, len(s)+1)), len(s))' "$EV")
like "$seqs" '^True [0-9]+$' "events.ndjson seq is 1..N without gaps"
is "$(json "$OUT/.ladderd/status/good/status.json" '[d["complete"], d["state"]]')" \
	'[true, "complete"]' "status.json ends complete"
is "$(tail -n 1 "$EV" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" \
	complete "the last event is complete"
like "$(cat "$EV")" '"quality":"c".*"rung_state":"done"' "rung events carry the rung as quality"
like "$(cat "$T/good.out")" "$OUT/good/master.m3u8" "run prints the published playlist path"

# 2. Re-running the same task id with --replace replaces the package
# atomically (without it, it is refused: t0120).
"$LADDERD" run -c "$T/ladderd.conf" "$T/input.bin" -o "$OUT" --task-id good --replace >/dev/null 2>&1
is "$?" 0 "a re-run of the same task id with --replace succeeds"
ok "the re-run replaced the package" test -s "$OUT/good/renditions.json"
is "$(ls "$OUT" | tr '\n' ' ')" "good " "no leftovers beside the package"

# 3. A rung that segfaults fails the task, names the rung and the signal.
"$LADDERD" run -c "$T/ladderd.conf" -p crash "$T/input.bin" -o "$OUT" --task-id crash >/dev/null 2>"$T/crash.err"
is "$?" 1 "a segfaulting rung fails the task (exit 1)"
like "$(cat "$T/crash.err")" 'rung b: worker killed by signal 11' "the message names the rung and the signal"
ok "a failed task publishes nothing" test ! -e "$OUT/crash"
is "$(json "$OUT/.ladderd/status/crash/status.json" 'd["state"]')" failed "status says failed"
like "$(json "$OUT/.ladderd/status/crash/status.json" 'd["error"]["message"]')" 'signal 11' \
	"status.json carries the error"

# 4. A hung rung is killed by the time limit (2 s, then SIGKILL after 5 s).
start=$(date +%s)
"$LADDERD" run -c "$T/ladderd.conf" -p hang "$T/input.bin" -o "$OUT" --task-id hang >/dev/null 2>"$T/hang.err"
rc=$?
took=$(( $(date +%s) - start ))
is "$rc" 1 "a hung rung fails the task"
like "$(cat "$T/hang.err")" 'rung d: stopped at the time limit of [0-9]+ s' "the message says time limit"
ok "the hung rung was killed in bounded time (${took}s)" test "$took" -lt $((30 * MULT))

# 5. The ABI gate.
"$LADDERD" run -c "$T/ladderd.conf" -p badabi "$T/input.bin" -o "$OUT" --task-id abi >/dev/null 2>"$T/abi.err"
is "$?" 1 "a plugin with a wrong ABI fails the task"
like "$(cat "$T/abi.err")" "stage 't_badabi' \(.*t_badabi.so\) built for ABI 99, daemon speaks 1" \
	"the refusal names the file and both ABI versions"

# 6. Bad task ids are refused before anything runs.
for bad in '..' 'a/b' '' "$(printf 'x%.0s' $(seq 65))" 'caf\303\251'; do
	"$LADDERD" run -c "$T/ladderd.conf" "$T/input.bin" -o "$OUT" --task-id "$(printf "$bad")" >/dev/null 2>"$T/id.err"
	rc=$?
	like "$rc $(cat "$T/id.err")" '^[12] .*(invalid task id|usage)' "task id '$bad' refused"
done
done_testing
