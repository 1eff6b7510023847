#!/bin/sh
# t0470-notify-tarpit.sh - one slow receiver delays no one else (issue 9
# finding 5). Six manifests name a tarpit as their webhook (a server on
# 127.0.0.1 that accepts connections and never answers; notify.timeout is
# 4 s); then a plain file is dropped. The operator's receiver must get
# every event of every task, each within a small bound of the event's own
# time, while the tarpit holds its connections: deliveries are concurrent,
# at most notify.max_per_host at once to one destination.
. "$(dirname "$0")/lib.sh"
require python3
TP=
trap '[ -n "$TP" ] && kill "$TP" 2>/dev/null; kill_all; _cleanup' EXIT
BOUND=$(awk -v m="$MULT" 'BEGIN { print 2 * m }') # seconds

start_receiver op --quiet || bail_out "receiver"
PA=$PORT
# The tarpit: accept, read, never answer; count connections at once.
"$PY" - "$T/tarpit.port" "$T/tarpit.max" <<'PY' >>"$T/tarpit.log" 2>&1 &
import os, socket, sys, threading, time
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
lock = threading.Lock()
now = [0, 0]  # open connections, the most at once
def hold(c):
    with lock:
        now[0] += 1
        now[1] = max(now[1], now[0])
        open(sys.argv[2], "w").write("%d\n" % now[1])
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass
    with lock:
        now[0] -= 1
threading.Timer(120, lambda: os._exit(0)).start()
while True:
    c, _ = srv.accept()
    threading.Thread(target=hold, args=(c,), daemon=True).start()
PY
TP=$!
wait_for 10 test -s "$T/tarpit.port" || bail_out "tarpit"
PT=$(cat "$T/tarpit.port")

write_conf "$T/ladderd.conf" "
max_jobs = 4;
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
notify = { webhook = \"http://127.0.0.1:$PA/hook\"; timeout = 4; max_per_host = 2;
	allow_manifest_webhook = true; manifest_webhook_hosts = [ \"127.0.0.1\" ];
	allow_networks = [ \"127.0.0.1/32\" ]; };
profiles = { $(quick_profile) };"
start_daemon "$T/ladderd.conf"

mkdir -p "$T/ingest/media"
for i in 1 2 3 4 5 6; do
	echo "$i" >"$T/ingest/media/slow$i.mov"
	printf '{"task_id": "slow%s", "source": "media/slow%s.mov", "webhook": "http://127.0.0.1:%s/hook"}' \
		"$i" "$i" "$PT" >"$T/m$i.tmp"
	mv "$T/m$i.tmp" "$T/ingest/m$i.json"
done
wait_for 10 test -s "$T/tarpit.max"
echo plain >"$T/plain.mp4"
mv "$T/plain.mp4" "$T/ingest/plain.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^plain-'"
plain=$(task_ids_for plain)
for id in slow1 slow2 slow3 slow4 slow5 slow6 "$plain"; do
	wait_state "$id" complete 30
done

# late ID...: every event of each task reached the operator; prints the
# events that arrived more than BOUND s after their own time.
late() {
	"$PY" - "$T/op.jsonl" "$T/status" "$BOUND" "$@" <<'PY'
import datetime, json, os, sys
out, status, bound = sys.argv[1], sys.argv[2], float(sys.argv[3])
got = {}
for line in open(out):
    r = json.loads(line)
    b = r["body"]
    t = datetime.datetime.strptime(b["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    key = (b["task_id"], b["seq"])
    got[key] = min(got.get(key, 1e18), r["received"] - t)
bad = []
for task in sys.argv[4:]:
    n = json.load(open(os.path.join(status, task, "status.json")))["seq"]
    for seq in range(1, n + 1):
        d = got.get((task, seq))
        if d is None:
            bad.append("%s-%d missing" % (task, seq))
        elif d > bound:
            bad.append("%s-%d after %.1f s" % (task, seq, d))
print(" ".join(bad))
PY
}
all_there() { [ -z "$(late "$@" | grep missing)" ]; }
wait_for 20 all_there slow1 slow2 slow3 slow4 slow5 slow6 "$plain"
is "$(late slow1 slow2 slow3 slow4 slow5 slow6 "$plain")" "" \
	"every event reached the operator within $BOUND s, tarpit or not"
ok "the tarpit held connections all the while" test "$(cat "$T/tarpit.max")" -ge 1
ok "at most max_per_host (2) connections to it at once" test "$(cat "$T/tarpit.max")" -le 2
stop_daemon
is "$?" 0 "the daemon stops cleanly with deliveries in flight"
done_testing
