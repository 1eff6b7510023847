#!/bin/sh
# t0120-user-rough-edges: what a new user following the README meets
# (issue 18): no dangling references to files that are not shipped; the
# example webhook receiver says where it listens and keeps running;
# `ladderd run` refuses to overwrite a package unless --replace, lists the
# profiles when -p names none, and says that it sends no webhooks;
# `ladderd stage` merges the stage's named arguments from the workflow and
# writes no status event (nor warns about one) outside a task.
. "$(dirname "$0")/lib.sh"

# --- docs point only at shipped files -------------------------------------
refs=$(cd "$LADDERD_SRC" && grep -rIl 'DESIGN' --exclude-dir='_build*' \
	--exclude-dir=.git --exclude-dir=node_modules --exclude-dir=autom4te.cache \
	--exclude='t0120-user-rough-edges.sh' . 2>/dev/null)
is "$refs" "" "no file refers to DESIGN.md (not in the tree; README and man pages are)"

# --- the example receiver ------------------------------------------------
RECEIVER="$LADDERD_SRC/contrib/webhook-receiver/receiver.py"
"$PY" "$RECEIVER" --port 0 >"$T/recv.out" 2>"$T/recv.err" &
RPID=$!
wait_for 10 grep -q 'listening on' "$T/recv.out"
line=$(head -n 1 "$T/recv.out")
like "$line" '^receiver: listening on http://127\.0\.0\.1:[0-9]+/ until stopped' \
	"receiver.py prints where it listens and that it runs until stopped"
port=$(printf '%s' "$line" | sed -n 's|.*127\.0\.0\.1:\([0-9]*\)/.*|\1|p')
code=$("$PY" - "$port" <<'PYEOF'
import sys, urllib.request
req = urllib.request.Request("http://127.0.0.1:%s/hook" % sys.argv[1],
    data=b'{"task_id":"x","seq":1}', headers={"Content-Type": "application/json",
    "webhook-id": "x-1", "webhook-timestamp": "0"})
try:
    print(urllib.request.urlopen(req, timeout=10).status)
except Exception as e:
    print(e)
PYEOF
)
is "$code" 204 "it answers on the printed address (no secret: accepts)"
ok "and is still running (no default lifetime)" kill -0 "$RPID"
kill -TERM "$RPID" 2>/dev/null
wait "$RPID" 2>/dev/null
"$PY" "$RECEIVER" --port 0 --lifetime 0.5 >"$T/recv2.out" 2>&1 &
RPID2=$!
wait_for 10 sh -c "! kill -0 $RPID2"
ok "--lifetime S makes it exit by itself" sh -c "! kill -0 $RPID2"
like "$(cat "$T/recv2.out")" 'listening on http://127\.0\.0\.1:[0-9]+/ for 0\.5 s' \
	"and it says so"
wait "$RPID2" 2>/dev/null

# --- ladderd run ---------------------------------------------------------
require ffmpeg
write_conf "$T/ladderd.conf" 'notify = { webhook = "http://127.0.0.1:9/hook"; };
profiles = { tiny = { segment_duration = 1; dash = false;
	ladder = ( { name = "90p"; height = 90; bitrate = 100; } ); };
	other = { }; };'
mkclip "$T/in.mp4" -f lavfi -i testsrc2=size=160x90:rate=25:duration=1 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p ||
	bail_out "cannot make a clip"
run() { # NAME ARGS...: ladderd run, output in $T/NAME.{out,err}, rc in $rc
	local name=$1
	shift
	"$LADDERD" run -c "$T/ladderd.conf" "$@" >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
}
run first -p tiny "$T/in.mp4" -o "$T/out" --task-id same
is "$rc" 0 "run: a first run publishes out/same"
like "$(cat "$T/first.err")" "notify\.webhook is configured; .ladderd run. sends no webhooks" \
	"run: says that it does not send the configured webhook"
inode=$(stat -c %i "$T/out/same/master.m3u8" 2>/dev/null)
events=$(md5sum <"$T/out/.ladderd/status/same/events.ndjson" 2>/dev/null)
run again -p tiny "$T/in.mp4" -o "$T/out" --task-id same
is "$rc" 1 "run: the same task id again is refused (exit 1)"
like "$(cat "$T/again.err")" "task 'same' already exists in '$T/out/same': use --replace" \
	"run: and says why and what to do"
is "$(stat -c %i "$T/out/same/master.m3u8" 2>/dev/null)" "$inode" \
	"run: the package is untouched"
is "$(md5sum <"$T/out/.ladderd/status/same/events.ndjson" 2>/dev/null)" "$events" \
	"run: and so are its events"
run replace -p tiny "$T/in.mp4" -o "$T/out" --task-id same --replace
is "$rc" 0 "run --replace: replaces it"
ok "run --replace: with a new package" test "$(stat -c %i "$T/out/same/master.m3u8")" != "$inode"
run noprof -p nosuch "$T/in.mp4" -o "$T/out" --task-id np
is "$rc" 1 "run -p nosuch: exit 1"
like "$(cat "$T/noprof.err")" "unknown profile 'nosuch' \(configured: default, other, tiny\)" \
	"run -p nosuch: lists the configured profiles"
ok "run -p nosuch: no package" test ! -e "$T/out/np"

# --- ladderd stage -------------------------------------------------------
write_conf "$T/stage.conf" 'workflow = { post = ( "hls_footer",
	{ stage = "t_fail"; args = { fail_message = "from the workflow"; }; } ); };
profiles = { p = { workflow = { pre = ( "probe",
	{ stage = "t_fail"; args = { fail_message = "from profile p"; }; } ); }; }; };'
echo '{ "fail_message": "from the context" }' >"$T/ctx.json"
"$LADDERD" stage -c "$T/stage.conf" t_fail "$T/ctx.json" >"$T/s1.out" 2>"$T/s1.err"
is "$(json "$T/s1.out" 'd["error"]["message"]')" "from the workflow" \
	"stage: the workflow's named arguments are merged (over the context, as in a task)"
echo '{ "task": { "profile": "p" } }' >"$T/ctxp.json"
"$LADDERD" stage -c "$T/stage.conf" t_fail "$T/ctxp.json" >"$T/s2.out" 2>"$T/s2.err"
is "$(json "$T/s2.out" 'd["error"]["message"]')" "from profile p" \
	"stage: from the workflow of the context's task.profile"
echo "{ \"input\": { \"path\": \"$T/in.mp4\" } }" >"$T/probe.json"
"$LADDERD" stage -c "$T/stage.conf" probe "$T/probe.json" >"$T/s3.out" 2>"$T/s3.err"
is "$?" 0 "stage probe: runs on a context with only input.path"
is "$(json "$T/s3.out" 'd["probe"]["video"]["width"]')" 160 "stage probe: adds ctx.probe"
is "$(grep -c 'status event' "$T/s3.err")" 0 \
	"stage probe: no 'cannot write status event' warning outside a task"

# --help after a command: that command's usage on stdout, exit 0 (not
# "unrecognized option" and a usage on stderr).
for c in run status cancel retry check-config settings stage notify; do
	out=$("$LADDERD" $c --help 2>"$T/help.err")
	is "$?" 0 "ladderd $c --help: exit 0"
	like "$out" "^usage: ladderd $c " "... its own usage on stdout"
	is "$(cat "$T/help.err")" "" "... nothing on stderr"
done
out=$("$LADDERD" --help)
like "$out" "ladderd-stages\(7\)" "ladderd --help: every command, and where to read more"
done_testing
