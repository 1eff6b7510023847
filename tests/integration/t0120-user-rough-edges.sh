#!/bin/sh
# t0120-user-rough-edges: what a new user following the README meets
# (issue 18): no dangling references to files that are not shipped, and
# the example webhook receiver says where it listens and keeps running.
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
done_testing
