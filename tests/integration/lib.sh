# tests/integration/lib.sh - TAP helpers for integration tests (git t/ style).
#
# Each test sources this file and gets a fresh trash directory $T (removed
# at exit unless LADDERD_TEST_LEAVE=1); every helper is listed, one line
# each, in tests/README.md. Timeouts are scaled by LADDERD_TEST_TIMEOUT_MULT
# (sanitizer builds are slow).
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
_servers=
_slurm=
_cleanup() {
	# The test servers (start_httpd, start_receiver) and the Slurm cluster
	# (start_slurm) go with the test.
	local pid
	for pid in $_servers; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[ -n "$_slurm" ] &&
		sh "$LADDERD_SRC/tests/tools/slurm-cluster.sh" stop "$_slurm" \
			>/dev/null 2>&1
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
# runs is not installed ("ladderd": when the binary is not built). Call it
# before the first test line.
require() {
	local tool
	for tool in "$@"; do
		if [ "$tool" = ladderd ]; then
			[ -x "$LADDERD" ] || skip_all "ladderd not built"
		else
			command -v "$tool" >/dev/null 2>&1 ||
				skip_all "$tool not installed"
		fi
	done
}
# bail_out MSG: stop the whole test at once (TAP "Bail out!").
bail_out() {
	echo "Bail out! $1"
	exit 1
}
done_testing() {
	echo "1..$_n"
	if [ "$_failed" != 0 ] && [ "${LADDERD_TEST_CATLOG:-0}" = 1 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] && sed "s|^|# ${f##*/}: |" "$f"
		done
	fi
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
# With no extra args: mkclip_av OUT 640x360 3.
mkclip() {
	local out=$1
	shift
	if [ $# -eq 0 ]; then
		mkclip_av "$out" 640x360 3
		return
	fi
	ffmpeg -nostdin -hide_banner -loglevel error -y "$@" "$out"
}
# mkclip_av OUT SIZE SECONDS: testsrc2 at SIZE and 25 fps with a 440 Hz
# tone, H.264 (ultrafast, yuv420p) and AAC.
mkclip_av() {
	mkclip "$1" -f lavfi -i "testsrc2=size=$2:rate=25:duration=$3" \
		-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$3" \
		-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest
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

# quick_profile [PRE_STAGE [SLEEP_MS [STAGE]]]: the libconfig text of a
# profile "quick" that does no media work, for tests about the daemon
# rather than the media: t_record (sleeping SLEEP_MS, default 10) stands in
# for the rendition stages, then STAGE (notify) if given; PRE_STAGE
# (download) is its pre phase. Use inside `profiles = { ... };`.
quick_profile() {
	local pre= more=
	[ -n "${1:-}" ] && pre="\"$1\""
	[ -n "${3:-}" ] && more=", \"$3\""
	printf '%s\n' "quick = {
    ladder = ( { name = \"only\"; height = 360; bitrate = 500; } );
    workflow = { pre = ( $pre ); rendition = ( { stage = \"t_record\"; args = { record_sleep_ms = ${2:-10}; }; }$more );
                 post = ( \"t_record\", \"publish\" ); };
  };"
}
# shared_alone_profiles: two profiles over the same two small rungs (hi 320,
# lo 180; 1 s segments, ultrafast): "shared" (one decoder feeds both) and
# "alone" (each rung decodes on its own).
# unit_pids LOG LABEL: the pids that logged lines of unit LABEL in a
# `ladderd run` log (its prefix "job=ID LABEL: "), one per line.
unit_pids() {
	sed -n "s/.*ladderd\[\([0-9]*\)\]: [a-z]*: job=[^ ]* $2: .*/\1/p" "$1" |
		sort -u
}
shared_alone_profiles() {
	local ladder='ladder = ( { name = "hi"; height = 320; bitrate = 400; },
                   { name = "lo"; height = 180; bitrate = 200; } );'
	printf '%s\n' "profiles = {
  shared = { segment_duration = 1; video = { preset = \"ultrafast\"; }; $ladder };
  alone = { segment_duration = 1; shared_decode = false;
    video = { preset = \"ultrafast\"; }; $ladder };
};"
}
# LADDER3: three small rungs (360p, 240p, 180p), for profiles that encode.
LADDER3='ladder = ( { name = "360p"; height = 360; bitrate = 600; },
               { name = "240p"; height = 240; bitrate = 300; },
               { name = "180p"; height = 180; bitrate = 200; } );'

# --- test servers on 127.0.0.1 (a free port each; stopped at exit) -------
# _serve NAME CMD...: start CMD --port-file $T/NAME.port in the background,
# its output in $T/NAME.log; bounded wait for the port. Sets SERVER_PID and
# PORT; returns 1 when it did not start.
_serve() {
	local name=$1
	shift
	rm -f "$T/$name.port"
	"$@" --port-file "$T/$name.port" >>"$T/$name.log" 2>&1 &
	SERVER_PID=$!
	_servers="$_servers $SERVER_PID"
	wait_for 10 test -s "$T/$name.port" || return 1
	PORT=$(cat "$T/$name.port")
}
# start_httpd NAME [ARG...]: tests/tools/httpd.py serving $T/www (ARGs: -v
# logs each request, --slow-bytes N trickles /slow, ...).
start_httpd() {
	local name=$1
	shift
	mkdir -p "$T/www"
	_serve "$name" "$PY" "$LADDERD_SRC/tests/tools/httpd.py" --root "$T/www" \
		--lifetime 600 "$@"
}
# start_receiver NAME [ARG...]: contrib/webhook-receiver/receiver.py; the
# events it accepts in $T/NAME.jsonl (ARGs: --secret S, --quiet, --port P).
start_receiver() {
	local name=$1
	shift
	_serve "$name" "$PY" "$LADDERD_SRC/contrib/webhook-receiver/receiver.py" \
		--out "$T/$name.jsonl" --lifetime 600 "$@"
}
# stop_server PID: stop a test server before the end (a receiver that goes
# down in the middle of a test).
stop_server() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	_servers=$(echo " $_servers " | sed "s/ $1 / /")
}
# received FILE ID: the seqs a receiver accepted for task ID (FILE is its
# NAME.jsonl), sorted, each once.
received() {
	"$PY" - "$1" "$2" <<'PY'
import json, sys
seqs = set()
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r["body"]["task_id"] == sys.argv[2]:
            seqs.add(r["body"]["seq"])
except FileNotFoundError:
    pass
print(" ".join(map(str, sorted(seqs))))
PY
}
# all_delivered FILE ID: the receiver has every seq of task ID's status.
all_delivered() {
	local n
	n=$(json "$T/status/$2/status.json" 'd["seq"]' 2>/dev/null) || return 1
	[ "$(received "$1" "$2")" = "$(seq -s ' ' 1 "$n")" ]
}

# --- the browser playback checks (tests/playback) ---------------------
# install_players: tests/playback/install.sh (headless Chromium and the
# players) with its result as a test line; sets PB (the folder). Returns 0
# when they are ready, 1 when the install failed (a failing line), 77 when
# they cannot be installed here (no network, outside CI: no line, the
# reason in PLAYERS_WHY).
install_players() {
	local rc
	PB="$LADDERD_SRC/tests/playback"
	sh "$PB/install.sh" >"$T/install.log" 2>&1
	rc=$?
	if [ $rc = 77 ] && [ "${CI:-}" != true ]; then
		PLAYERS_WHY=$(tail -n 1 "$T/install.log")
		return 77
	fi
	_report $rc "tests/playback/install.sh: chromium and the players are installed" \
		"exit $rc: $(tail -n 20 "$T/install.log")"
	return $((rc != 0))
}

# driver_results FILE: turn a playback driver's output (tab-separated:
# "R PASS CHECK DIAG" a test line, "# ..." a comment) into TAP; sets
# DRIVER_CHECKS to the number of test lines.
driver_results() {
	local kind pass check diag
	DRIVER_CHECKS=0
	while IFS='	' read -r kind pass check diag; do
		case $kind in
		R)
			DRIVER_CHECKS=$((DRIVER_CHECKS + 1))
			_report "$pass" "$check" "$diag"
			;;
		'#') echo "# $pass${check:+ $check}${diag:+ $diag}" ;;
		esac
	done <"$1"
}

# --- the Slurm test cluster (tests/tools/slurm-cluster.sh) -------------
# start_slurm: skip the test unless Slurm and munge are installed, else
# start a one-node cluster in $SC ($T/slurm; stopped at exit, also when a
# signal ends the test) and export SLURM_CONF. Sets the EXIT trap.
start_slurm() {
	local b
	PATH=$PATH:/usr/sbin
	for b in slurmctld slurmd munged srun sinfo squeue scancel scontrol; do
		command -v $b >/dev/null 2>&1 ||
			skip_all "$b not found (apt-get install slurmctld slurmd slurm-client munge)"
	done
	SC="$T/slurm"
	_slurm=$SC
	trap 'kill_all; _cleanup' EXIT
	trap "exit 143" TERM INT HUP
	sh "$LADDERD_SRC/tests/tools/slurm-cluster.sh" start "$SC" \
		>"$T/cluster.out" 2>&1 ||
		{ cat "$T/cluster.out"; skip_all "the test cluster did not start"; }
	export SLURM_CONF="$SC/slurm.conf"
}
# live_jobs PREFIX: the squeue ids of the live jobs whose name starts so.
live_jobs() {
	squeue -h -o '%i %j' 2>/dev/null |
		awk -v p="$1" 'index($2, p) == 1 { print $1 }'
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
# drop NAME CONTENT: a file appears whole in the ingest folder (written
# beside it, then renamed in).
drop() {
	printf '%s' "$2" >"$T/$1.tmp"
	mv "$T/$1.tmp" "$T/ingest/$1"
}
# check_refused NAME CONTENT ERE DESCRIPTION: drop NAME; it must land in
# failed/<id>/ with an error.json message matching ERE and a failed status
# (two test lines).
check_refused() {
	local f d
	drop "$1" "$2"
	wait_for 10 sh -c "ls '$T'/failed/*/'$1' >/dev/null 2>&1"
	f=$(ls "$T"/failed/*/"$1" 2>/dev/null | head -n 1)
	if [ -z "$f" ]; then
		_report 1 "$4" "no failed/*/$1"
		return
	fi
	d=$(dirname "$f")
	like "$(json "$d/error.json" 'd["message"]')" "$3" "$4"
	is "$(state_of "$(basename "$d")")" failed "$4: status failed"
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

# stage [-v] STAGE NAME: `ladderd stage STAGE $T/NAME.json` with
# $T/ladderd.conf (-v: its debug lines too, in $T/NAME.err); sets $rc (0
# ok/skip, 1 fail, 75 retry), $out (the printed context, $T/NAME.out) and
# $msg (ctx.error.message, else stderr).
stage() {
	local v=
	if [ "$1" = -v ]; then
		v=-v
		shift
	fi
	"$LADDERD" stage $v -c "$T/ladderd.conf" "$1" "$T/$2.json" \
		>"$T/$2.out" 2>"$T/$2.err"
	rc=$?
	out="$T/$2.out"
	msg=
	grep -q '"error"' "$out" 2>/dev/null &&
		msg=$(json "$out" 'd["error"]["message"]' 2>/dev/null)
	[ -n "$msg" ] || msg=$(cat "$T/$2.err")
}
