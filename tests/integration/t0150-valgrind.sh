#!/bin/sh
# The daemon's own code is valgrind-clean: `ladderd run` through the chord
# (every rung worker traced too) and the daemon taking a drop, refusing a
# bad manifest and stopping, with no memory error and no definite leak.
# Skipped in the sanitizer build (LADDERD_VALGRIND=0): ASan and valgrind
# do not mix.
. "$(dirname "$0")/lib.sh"
[ "${LADDERD_VALGRIND:-1}" = 0 ] && skip_all "LADDERD_VALGRIND=0"
require valgrind
trap 'kill_all; _cleanup' EXIT
# Libraries' constructors in dlopen'd stages leak on their own (the
# suppressions say which): not ladderd's code.
VG="valgrind -q --trace-children=yes --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --suppressions=$LADDERD_SRC/tests/valgrind.supp"

write_conf "$T/ladderd.conf" "
max_rungs = 2;
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { quick = {
  ladder = ( { name = \"a\"; height = 360; bitrate = 500; }, { name = \"b\"; height = 240; bitrate = 300; } );
  workflow = { pre = (); rendition = ( { stage = \"t_record\"; args = { record_sleep_ms = 10; }; }, \"notify\" );
               post = ( \"t_record\", \"publish\" ); }; }; };"
echo data >"$T/in.bin"
$VG "$LADDERD" run -c "$T/ladderd.conf" -p quick "$T/in.bin" -o "$T/out" --task-id vg >/dev/null 2>"$T/run.err"
is "$?" 0 "ladderd run and its rung workers: no valgrind error"
$VG "$LADDERD" check-config -c "$T/ladderd.conf" >/dev/null 2>"$T/check.err"
# dlopen'd libraries' own constructors may leak; judge our frames only.
ok "check-config: no error in ladderd's own code" sh -c "! grep -q 'by 0x[0-9A-F]*: ladderd_' '$T/check.err'"

$VG "$LADDERD" -c "$T/ladderd.conf" $ALLOW_ROOT >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for 30 test -s "$T/status/_daemon.json"
echo one >"$T/ingest/one.mov"
wait_for 60 sh -c "ls '$T/publish' | grep -q '^one-'"
ok "the daemon under valgrind published a drop" sh -c "ls '$T/publish' | grep -q '^one-'"
echo '{"sorce": "x"}' >"$T/ingest/bad.json"
wait_for 30 sh -c "ls '$T/failed' | grep -q ."
ok "and refused a bad manifest" sh -c "ls '$T/failed' | grep -q ."
stop_daemon
is "$?" 0 "the daemon and its workers stop with no valgrind error"
done_testing
