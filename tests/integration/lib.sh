# tests/integration/lib.sh - TAP helpers for integration tests (git t/ style).
#
# Each test sources this file, gets a fresh trash directory $T (removed at
# exit unless LADDERD_TEST_LEAVE=1), and uses:
#   $LADDERD            the built binary
#   write_conf FILE [PROFILE_SNIPPET...]   a config whose folders live in $T
#   mkclip OUT ARGS...  make a short clip with the ffmpeg CLI (lavfi sources)
#   ok COND_CMD... / is A B NAME / like TEXT REGEX NAME / done_testing
#   wait_for SECONDS CMD...  bounded wait for a condition (polls every 0.1 s)
# Timeouts are scaled by LADDERD_TEST_TIMEOUT_MULT (sanitizer builds are slow).
set -u
LADDERD_SRC=${LADDERD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
LADDERD_BUILD=${LADDERD_BUILD:-$LADDERD_SRC/_build}
export LADDERD_SRC LADDERD_BUILD
LADDERD="$LADDERD_BUILD/ladderd"
TEST_STAGES="$LADDERD_BUILD/tests/stages/.libs"
BUILD_STAGES="$LADDERD_BUILD/stages/.libs"
MULT=${LADDERD_TEST_TIMEOUT_MULT:-1}
T=$(mktemp -d "${TMPDIR:-/tmp}/ladderd-test.XXXXXX")
_n=0
_failed=0
_cleanup() {
	if [ "${LADDERD_TEST_LEAVE:-0}" = 1 ]; then
		echo "# trash directory kept: $T"
	else
		rm -rf "$T"
	fi
}
trap _cleanup EXIT

_report() { # status name [diag]
	_n=$((_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $_n - $2"
	else
		echo "not ok $_n - $2"
		_failed=$((_failed + 1))
		[ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/#   /'
	fi
	return 0
}
# ok NAME CMD...: passes when CMD exits 0.
ok() {
	local name=$1
	shift
	local out
	out=$("$@" 2>&1)
	_report $? "$name" "$out"
}
# is GOT WANT NAME
is() {
	[ "$1" = "$2" ]
	_report $? "$3" "got:  '$1'
want: '$2'"
}
# like TEXT ERE NAME
like() {
	printf '%s' "$1" | grep -Eq -- "$2"
	_report $? "$3" "text: '$(printf '%s' "$1" | head -c 2000)'
does not match: '$2'"
}
skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}
# require TOOL...: skip the whole test, saying which, when a command it
# runs is not installed. Call it before the first test line.
require() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || skip_all "$tool not installed"
	done
}
done_testing() {
	echo "1..$_n"
	[ "$_failed" = 0 ]
	exit $?
}
# wait_for SECONDS CMD...: bounded wait for CMD to succeed.
wait_for() {
	local limit
	limit=$(awk -v s="$1" -v m="$MULT" 'BEGIN { printf "%d", s * m * 10 }')
	shift
	local i=0
	while [ "$i" -lt "$limit" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# The real interpreter (a pyenv shim costs 0.1 s per call).
PY=$(python3 -c 'import sys; print(sys.executable)')
# json FILE EXPR: print a field of a JSON file (python3 expression on `d`).
json() {
	"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"
}
# mkclip OUT [ffmpeg args before OUT]: short clips from lavfi sources.
# With no extra args: 3 s of 640x360 testsrc2 at 25 fps with a 440 Hz tone.
mkclip() {
	local out=$1
	shift
	if [ $# -eq 0 ]; then
		set -- -f lavfi -i testsrc2=size=640x360:rate=25:duration=3 \
			-f lavfi -i sine=frequency=440:sample_rate=48000:duration=3 \
			-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest
	fi
	ffmpeg -nostdin -hide_banner -loglevel error -y "$@" "$out"
}
# write_conf FILE [EXTRA]: a config with every folder under $T and the
# build tree's stages (and the test-only stages) on the stage path. EXTRA is
# appended verbatim (libconfig allows later groups, so put profiles there).
write_conf() {
	local file=$1
	local extra=${2:-}
	mkdir -p "$T/spool" "$T/publish" "$T/status" "$T/failed" "$T/ingest"
	cat >"$file" <<CONF
spool = "$T/spool";
publish = "$T/publish";
status = "$T/status";
failed = "$T/failed";
stage_dir = "$BUILD_STAGES:$TEST_STAGES";
$extra
CONF
}

# --- the daemon --------------------------------------------------------
ALLOW_ROOT=
[ "$(id -u)" = 0 ] && ALLOW_ROOT=--allow-root
# start_daemon CONF [LOG [ARG...]]: start `ladderd -c CONF ARG...` (-v for
# the debug lines) in the background (its own session), wait until it wrote
# status/_daemon.json. DAEMON_PID is set.
start_daemon() {
	local conf=$1 log=${2:-$T/daemon.log}
	shift
	[ $# -gt 0 ] && shift
	rm -f "$T/status/_daemon.json"
	# The suite runs as root in CI: say it is meant (t0860 tests the
	# refusal and the `user` setting).
	setsid "$LADDERD" -c "$conf" $ALLOW_ROOT "$@" >>"$log" 2>&1 &
	DAEMON_PID=$!
	wait_for 10 test -s "$T/status/_daemon.json"
}
# stop_daemon: SIGTERM and a bounded wait for the exit; returns its status.
stop_daemon() {
	[ -n "${DAEMON_PID:-}" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	local i=0
	while kill -0 "$DAEMON_PID" 2>/dev/null && [ $i -lt $((300 * MULT)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		DAEMON_PID=
		return 124
	fi
	wait "$DAEMON_PID"
	local rc=$?
	DAEMON_PID=
	return $rc
}
# kill_all: SIGKILL the daemon and every process of this test (by $T in argv).
kill_all() {
	local pid=${DAEMON_PID:-}
	local i=0
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	# A job may fork a rung while pkill walks /proc: repeat, bounded,
	# until nothing of this test is left.
	while pkill -KILL -f "[l]adderd .*$T/" 2>/dev/null &&
		[ $i -lt $((50 * MULT)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$pid" ] && wait "$pid" 2>/dev/null
	DAEMON_PID=
	return 0
}
# state_of ID: the task's latest state ("" if none yet).
state_of() {
	[ -s "$T/status/$1/status.json" ] || return 0
	json "$T/status/$1/status.json" 'd["state"]' 2>/dev/null
}
# wait_state ID STATE SECONDS
wait_state() {
	wait_for "$3" sh -c "grep -q '\"state\":[[:space:]]*\"$2\"' '$T/status/$1/status.json'"
}
# task_ids_for NAME_PREFIX: task ids derived from a dropped file's name.
task_ids_for() {
	ls "$T/status" 2>/dev/null | grep "^$1-[0-9a-f]\{6\}$" || true
}

# stage STAGE NAME: `ladderd stage STAGE $T/NAME.json` with $T/ladderd.conf;
# sets $rc, $out (the printed context, $T/NAME.out) and $msg
# (ctx.error.message, else stderr).
stage() {
	"$LADDERD" stage -c "$T/ladderd.conf" "$1" "$T/$2.json" \
		>"$T/$2.out" 2>"$T/$2.err"
	rc=$?
	out="$T/$2.out"
	msg=
	grep -q '"error"' "$out" 2>/dev/null &&
		msg=$(json "$out" 'd["error"]["message"]' 2>/dev/null)
	[ -n "$msg" ] || msg=$(cat "$T/$2.err")
}
