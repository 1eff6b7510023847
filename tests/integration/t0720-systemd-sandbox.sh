#!/bin/sh
# The unit's seccomp settings do not break ladderd: a whole task (probe,
# shared decode, libx264 + AAC rungs, HLS, DASH, verify, publish) with
# `ladderd run`, then the daemon taking a drop and stopping on SIGTERM,
# run under the filters systemd installs (tests/tools/sandbox.c) for
# MemoryDenyWriteExecute=yes (no writable+executable memory, for ladderd,
# its stages, libav* or libx264) and SystemCallFilter=@system-service
# ~@privileged ~@resources with SystemCallErrorNumber=EPERM (the allow list
# made from `systemd-analyze syscall-filter`). Emulated because systemd is
# not pid 1 in the test containers.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

require ffmpeg
SANDBOX="$LADDERD_BUILD/tests/tools/sandbox"
[ -x "$SANDBOX" ] || skip_all "tests/tools/sandbox not built (make check builds it)"
"$SANDBOX" --check >"$T/check" 2>&1
rc=$?
[ $rc = 77 ] && skip_all "cannot install a seccomp filter here: $(cat "$T/check")"
is "$rc" 0 "MemoryDenyWriteExecute's filter refuses a W+X mmap and mprotect(PROT_EXEC)"

# The unit's system call filter, as numbers of this ABI.
# A line starting with ~ removes every set it names.
filter=$(sed -n 's/^SystemCallFilter=//p' "$LADDERD_SRC/contrib/systemd/ladderd.service.in" |
	awk '{ n = substr($0, 1, 1) == "~"; sub(/^~/, "");
	       for (i = 1; i <= NF; i++) printf "%s%s ", n ? "~" : "", $i }')
SYSCALLS=
if command -v systemd-analyze >/dev/null 2>&1 && command -v "${CC:-cc}" >/dev/null 2>&1 &&
	# shellcheck disable=SC2086
	"$PY" "$LADDERD_SRC/tests/tools/syscall_allow.py" $filter >"$T/allow" 2>"$T/allow.err" &&
	[ -s "$T/allow" ]; then
	SYSCALLS="--syscalls $T/allow"
	echo "# SystemCallFilter=$filter: $(wc -l <"$T/allow" | tr -d ' ') system calls allowed"
	"$SANDBOX" $SYSCALLS "$PY" -c 'import os; os.nice(1)' >/dev/null 2>&1
	is "$?" 1 "the system call filter refuses setpriority (@resources)"
	"$SANDBOX" $SYSCALLS "$PY" -c 'import os; os.getpid()'
	is "$?" 0 "and allows what @system-service lists"
else
	echo "# no systemd-analyze or C compiler: MemoryDenyWriteExecute only"
fi

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"default\"; } );
profiles = { default = {
	segment_duration = 1;
	ladder = ( { name = \"360p\"; height = 360; bitrate = 500; },
		   { name = \"240p\"; height = 240; bitrate = 300; } ); }; };"
mkclip_av "$T/src.mp4" 640x360 2 ||
	bail_out "cannot make test clips with ffmpeg"
# Leak checking off under the filters (sanitizer builds): LeakSanitizer
# stops the world with ptrace, which @system-service does not allow. Leaks
# are not what this test is about; the other tests check them.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
export ASAN_OPTIONS
# shellcheck disable=SC2086
"$SANDBOX" $SYSCALLS "$LADDERD" run -c "$T/ladderd.conf" "$T/src.mp4" \
	-o "$T/out" --task-id sandboxed >"$T/run.out" 2>"$T/run.err"
is "$?" 0 "ladderd run completes under the filters"
[ -s "$T/run.err" ] && grep -v ': info: ' "$T/run.err" | sed 's/^/# /' | tail -n 5
ok "HLS master playlist published" test -s "$T/out/sandboxed/master.m3u8"
ok "DASH manifest published" test -s "$T/out/sandboxed/manifest.mpd"
is "$(ls "$T/out/sandboxed" | grep -c '^\(360p\|240p\)$')" 2 "both video rungs are there"

# The daemon: inotify, epoll, signalfd, timerfd, workers, the webhook
# worker, a drop encoded and published, SIGTERM.
# shellcheck disable=SC2086
setsid "$SANDBOX" $SYSCALLS "$LADDERD" -c "$T/ladderd.conf" $ALLOW_ROOT \
	>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for 10 test -s "$T/status/_daemon.json"
ok "the daemon starts under the filters" test -s "$T/status/_daemon.json"
cp "$T/src.mp4" "$T/ingest/clip.mp4"
wait_for 60 sh -c "ls '$T/publish' | grep -q '^clip-'"
id=$(task_ids_for clip)
ok "a drop is encoded and published" test -s "$T/publish/$id/master.m3u8"
stop_daemon
is "$?" 0 "SIGTERM: the daemon exits 0"
grep -v ': info: ' "$T/daemon.log" | sed 's/^/# /' | tail -n 5
done_testing
