#!/bin/sh
# The chord's group contract (stage.h: ctx.group, ctx.rung.group,
# ctx.cleanup.shm) with names no stage of ours uses: a pre stage asks for
# a unit "_feed" running t_record alongside the rungs; the chord starts it
# and every member at once (even with max_rungs = 1), tells each member
# which unit it runs with, labels the unit for users, and removes the
# shared memory the task listed. Without the required stage in the
# rendition workflow there is no group.
. "$(dirname "$0")/lib.sh"

SHM="/ladderd-t0345-$$"
LADDER='ladder = ( { name = "a"; height = 720; bitrate = 2000; },
	{ name = "b"; height = 480; bitrate = 1000; },
	{ name = "c"; height = 360; bitrate = 500; } );'
write_conf "$T/ladderd.conf" "
max_rungs = 1;
profiles = {
  grp = {
    $LADDER
    workflow = {
      pre = ( { stage = \"t_group\"; args = { shm = \"$SHM\"; }; } );
      rendition = ( { stage = \"t_record\"; args = { record_sleep_ms = 600; }; } );
      post = ( \"t_record\", \"publish\" );
    };
  };
  nogrp = {
    $LADDER
    workflow = {
      pre = ( { stage = \"t_group\"; args = { requires = \"transcode\"; }; } );
      rendition = ( { stage = \"t_record\"; args = { record_sleep_ms = 300; }; } );
      post = ( \"t_record\", \"publish\" );
    };
  };
};"
echo "not media, the test stages do not read it" >"$T/input.bin"
OUT="$T/out"
# The most rungs that ran at once, from their recorded start/end times.
peak() {
	python3 - "$1" <<'PY'
import json, sys
ev = []
for r in json.load(open(sys.argv[1])):
    ev += [(r["t_record"]["start_us"], 1), (r["t_record"]["end_us"], -1)]
cur = top = 0
for t, k in sorted(ev):
    cur += k
    top = max(top, cur)
print(top)
PY
}

LADDERD_VERBOSE=1 "$LADDERD" run -c "$T/ladderd.conf" -p grp "$T/input.bin" -o "$OUT" \
	--task-id "g$$" >"$T/g.out" 2>"$T/g.err"
is "$?" 0 "a task with a group of another stage's making completes"
like "$(cat "$T/g.err")" 'test feeder for 3 rungs' "the chord planned the group and names its unit by its label"
like "$(cat "$T/g.err")" 'test feeder: ok' "the group's unit ran its own stages"
ok "no internal unit name in the log lines about it" sh -c "! grep -q 'rendition=_feed' '$T/g.err'"
R="$OUT/g$$/renditions.json"
is "$(json "$R" '[r["t_record"].get("group") for r in d]')" '["_feed", "_feed", "_feed"]' \
	"every member was told the unit it runs with (ctx.rung.group)"
is "$(json "$R" '[r["rung"]["name"] for r in d]')" '["a", "b", "c"]' \
	"the unit is no rendition of the package"
is "$(peak "$R")" 3 "the members started together although max_rungs = 1"
ok "the shared memory the task listed is removed" sh -c "! test -e /dev/shm${SHM}"

"$LADDERD" run -c "$T/ladderd.conf" -p nogrp "$T/input.bin" -o "$OUT" \
	--task-id "n$$" >"$T/n.out" 2>"$T/n.err"
is "$?" 0 "the same ladder without the group's required stage completes"
R="$OUT/n$$/renditions.json"
is "$(json "$R" '[r["t_record"].get("group") for r in d]')" '[null, null, null]' \
	"no member runs in a group"
is "$(peak "$R")" 1 "and max_rungs = 1 holds again"
done_testing
