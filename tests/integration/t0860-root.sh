#!/bin/sh
# Finding 13 of issue 9: the daemon started as root refuses to run unless
# told how: with `user = "nobody";` it sets up (spool lock, watches), gives
# its folders to that user and becomes it for good (uid, gid, supplementary
# groups) before taking any drop, and its workers run as that user too;
# with --allow-root it runs as root and warns loudly. A user that does not
# exist is refused. (CI and the demo run as root: lib.sh's start_daemon and
# contrib/demo-daemon.sh pass --allow-root.)
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root"
id nobody >/dev/null 2>&1 || skip_all "no user 'nobody'"
trap 'kill_all; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile) };"

# As root, told nothing: refused, nothing set up.
rm -rf "$T/spool"
"$LADDERD" -c "$T/ladderd.conf" >"$T/refused.log" 2>&1
is "$?" 1 "as root without 'user' or --allow-root the daemon exits 1"
like "$(cat "$T/refused.log")" "refusing to run as root: .*set 'user = \"NAME\";'.*--allow-root" \
	"and says what to do"
ok "it set nothing up" test ! -e "$T/spool"

# --allow-root: runs, warns loudly.
start_daemon "$T/ladderd.conf"
ok "with --allow-root it starts" test -s "$T/status/_daemon.json"
like "$(cat "$T/daemon.log")" "warning: RUNNING AS ROOT \(--allow-root\)" "and warns loudly"
stop_daemon

# user = "nobody": drops privileges before taking drops.
printf 'user = "nobody";\n' >>"$T/ladderd.conf"
chmod 755 "$T"
rm -rf "$T/spool" "$T/status"/*
setsid "$LADDERD" -c "$T/ladderd.conf" >"$T/user.log" 2>&1 &
DAEMON_PID=$!
wait_for 10 test -s "$T/status/_daemon.json"
uids=$(sed -n 's/^Uid:[[:space:]]*//p' "/proc/$DAEMON_PID/status" | tr -s '\t ' ' ')
is "$uids" "65534 65534 65534 65534" "the daemon runs as nobody (real, effective, saved, fs uid)"
groups=$(sed -n 's/^Groups:[[:space:]]*//p' "/proc/$DAEMON_PID/status" | tr -s '\t ' ' ' | sed 's/ $//')
ok "it kept no supplementary group of root" sh -c "! echo ' $groups ' | grep -q ' 0 '"
like "$(cat "$T/user.log")" "dropped root privileges: running as user 'nobody'" "the log says so"
echo data >"$T/ingest/.a.mp4" && mv "$T/ingest/.a.mp4" "$T/ingest/a.mp4"
wait_for 15 sh -c "ls '$T/publish' | grep -q '^a-'"
id=$(ls "$T/publish" | grep '^a-' | head -n 1)
ok "a drop is taken and published" test -n "$id"
is "$(stat -c %U "$T/publish/$id/renditions.json" 2>&1)" nobody "the package belongs to nobody (the job ran as nobody)"
is "$(stat -c %U "$T/spool")" nobody "the spool was given to nobody"
is "$(stat -c %U "$T/ingest")" nobody "so was the watch folder root had made"
is "$(stat -c %U "$T/spool/running.conf")" nobody "so was its config snapshot"
kill -TERM "$DAEMON_PID"
wait_for 10 sh -c "! kill -0 $DAEMON_PID 2>/dev/null"
ok "it stops on SIGTERM" sh -c "! kill -0 $DAEMON_PID 2>/dev/null"
DAEMON_PID=

# The stages' settings are read by a worker that becomes the user first,
# so no stage code runs as root. Seen through a stage only root may read
# that declares a setting the config uses: the worker, already nobody,
# cannot load it, so the setting is unknown and the daemon does not start;
# as root (check-config) the same config is accepted.
mkdir -m 700 "$T/rootonly"
cp "$TEST_STAGES/t_record.so" "$T/rootonly/"
sed -e "s|^stage_dir = .*|stage_dir = \"$T/rootonly:$BUILD_STAGES\";|" \
	-e 's|quick = {|quick = { t_record = { sleep_ms = 40; };|' \
	"$T/ladderd.conf" >"$T/rootonly.conf"
ok "as root the stage and its setting load (check-config)" \
	"$LADDERD" check-config -c "$T/rootonly.conf"
rm -rf "$T/spool"
timeout $((20 * MULT)) "$LADDERD" -c "$T/rootonly.conf" >"$T/rootonly.log" 2>&1
is "$?" 1 "the daemon to become nobody does not start"
like "$(cat "$T/rootonly.log")" "unknown setting 't_record'" \
	"the settings worker, already nobody, could not load the stage"

sed -i 's/^user = "nobody";$/user = "no-such-user-ladderd";/' "$T/ladderd.conf"
"$LADDERD" -c "$T/ladderd.conf" >"$T/nouser.log" 2>&1
is "$?" 1 "a user that does not exist is refused"
like "$(cat "$T/nouser.log")" "user 'no-such-user-ladderd' \(the 'user' setting\) does not exist" "with its name"
done_testing
