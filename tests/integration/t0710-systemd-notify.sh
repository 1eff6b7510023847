#!/bin/sh
# Type=notify: the daemon tells systemd READY=1 once it takes drops,
# STATUS= with the queue and running jobs, RELOADING=1 then READY=1 around
# a SIGHUP reload, WATCHDOG=1 every WATCHDOG_USEC/2 from its event loop
# (idle included), STOPPING=1 on SIGTERM. Only the daemon's own pid talks
# (NotifyAccess=main): workers do not inherit NOTIFY_SOCKET. systemd is
# played by a python3 listener on a unix datagram socket this test owns.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; [ -n "${LPID:-}" ] && kill "$LPID" 2>/dev/null; _cleanup' EXIT

grep -q '^#define HAVE_SYSTEMD 1' "$LADDERD_BUILD/config.h" ||
	skip_all "built without libsystemd (configure --with-systemd)"

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile "" 1500) };"
N="$T/notify.log"
: >"$N"
"$PY" "$LADDERD_SRC/tests/tools/sd_notify_listener.py" "$T/notify.sock" "$N" \
	$((120 * MULT)) &
LPID=$!
wait_for 10 test -S "$T/notify.sock"
ok "the listener is up" test -S "$T/notify.sock"

# 200 ms watchdog: a ping every 100 ms.
NOTIFY_SOCKET="$T/notify.sock"
WATCHDOG_USEC=200000
export NOTIFY_SOCKET WATCHDOG_USEC
start_daemon "$T/ladderd.conf"
unset NOTIFY_SOCKET WATCHDOG_USEC
ok "daemon started" test -s "$T/status/_daemon.json"
wait_for 10 grep -q ' READY=1$' "$N"
ok "READY=1 after start-up" grep -q "^$DAEMON_PID READY=1\$" "$N"
wait_for 10 grep -q ' STATUS=0 queued, 0 deferred, 0 running$' "$N"
ok "STATUS= says the queue is empty, nothing running" \
	grep -q "^$DAEMON_PID STATUS=0 queued, 0 deferred, 0 running\$" "$N"

# The watchdog is pinged from the loop while the daemon sits idle.
wait_for 10 sh -c "[ \$(grep -c ' WATCHDOG=1\$' '$N') -ge 5 ]"
ok "WATCHDOG=1 keeps coming while idle" \
	sh -c "[ \$(grep -c '^$DAEMON_PID WATCHDOG=1\$' '$N') -ge 5 ]"

# A running job shows in STATUS=.
echo clip >"$T/ingest/clip.mp4"
wait_for 15 grep -q ' STATUS=0 queued, 0 deferred, 1 running$' "$N"
ok "STATUS= counts the running job" \
	grep -q "^$DAEMON_PID STATUS=0 queued, 0 deferred, 1 running\$" "$N"
wait_for 20 sh -c "ls '$T/publish' | grep -q '^clip-'"
ok "the task completed" sh -c "ls '$T/publish' | grep -q '^clip-'"

# SIGHUP: RELOADING=1, then READY=1 again.
ready_before=$(grep -c ' READY=1$' "$N")
kill -HUP "$DAEMON_PID"
wait_for 10 sh -c "[ \$(grep -c ' READY=1\$' '$N') -gt $ready_before ]"
like "$(grep -E ' (RELOADING|READY)=1$' "$N" | tail -n 2 | cut -d' ' -f2 | tr '\n' ' ')" \
	'^RELOADING=1 READY=1 $' "a reload says RELOADING=1 then READY=1"

# SIGTERM: STOPPING=1 and a clean exit.
pid=$DAEMON_PID
stop_daemon
is "$?" 0 "SIGTERM: exit 0"
wait_for 10 grep -q ' STOPPING=1$' "$N"
ok "STOPPING=1 on SIGTERM" grep -q "^$pid STOPPING=1\$" "$N"
is "$(cut -d' ' -f1 "$N" | sort -u | tr '\n' ' ')" "$pid " \
	"every message came from the daemon, none from its workers"
# Only a daemon systemd started loads libsystemd (the workers never do).
command -v readelf >/dev/null &&
	is "$(readelf -d "$LADDERD" | grep -c 'libsystemd')" 0 \
		"bin/ladderd does not link libsystemd (dlopen under systemd)"
done_testing
