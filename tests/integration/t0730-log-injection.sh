#!/bin/sh
# Finding 10 of issue 9: whatever a drop's name holds, the daemon's log
# has one line per message. A name with a newline and a forged
# "ladderd[1]: info: job=payroll-2026: complete" must not start a line of
# its own; control bytes (newline, escape, carriage return) are escaped.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile "" 300) };"
start_daemon "$T/ladderd.conf"

nl='
'
evil="clip${nl}ladderd[1]: info: job=payroll-2026: complete$(printf '\033')[2J$(printf '\r').mp4"
echo data >"$T/tmpfile"
mv "$T/tmpfile" "$T/ingest/$evil"
wait_for 15 sh -c "ls '$T/publish' | grep -q '^clip_ladderd'"
ok "the drop was taken and published" sh -c "ls '$T/publish' | grep -q '^clip_ladderd'"
wait_for 10 grep -q 'complete' "$T/daemon.log"
log=$(cat "$T/daemon.log")
ok "no forged line starts with ladderd[1]:" sh -c "! grep -q '^ladderd\[1\]:' '$T/daemon.log'"
ok "every line of the log is a ladderd line" sh -c "! grep -Eqv '^([0-9T:.-]+Z )?ladderd\[[0-9]*\]: ' '$T/daemon.log'"
like "$log" "queued 'clip\\\\nladderd\[1\]: info: job=payroll-2026: complete\\\\x1b\[2J\\\\r\.mp4'" \
	"the name is logged with its control bytes escaped"
ok "no raw escape or carriage return byte in the log" sh -c "! grep -q '[[:cntrl:]]' '$T/daemon.log'"

stop_daemon
is "$?" 0 "daemon stops cleanly"
done_testing
