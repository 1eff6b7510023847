#!/bin/sh
# t0115-stage-settings: a stage's settings are declared by the stage alone
# (struct ladderd_setting). The test stage t_record declares
# profile.t_record.sleep_ms; with no daemon change check-config accepts it,
# range-checks it with the stage's range, refuses it when no workflow runs
# t_record, and the value reaches the stage. The built-in stages' settings
# are refused out of range with FILE:LINE, the daemon refuses them at start
# (it asks a worker: it loads no stage itself) and on reload, and
# ladderd-stages(7) lists exactly what `ladderd settings --man` writes,
# with check-config's defaults.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

rec_wf='workflow = { pre = (); rendition = ( "t_record" ); post = (); };'
write_conf "$T/ok.conf" "$rec_wf
profiles = { default = { t_record = { sleep_ms = 40; }; }; };"
out=$("$LADDERD" check-config -c "$T/ok.conf" 2>&1)
is "$?" 0 "check-config accepts a setting only the test stage declares"
like "$out" '  profile\.t_record\.sleep_ms = 300  \(int, 0\.\.60000; stage t_record\)' \
	"and lists it with the stage's default and range"

write_conf "$T/range.conf" "$rec_wf
profiles = { default = {
  t_record = { sleep_ms = 70000; }; }; };"
out=$("$LADDERD" check-config -c "$T/range.conf" 2>&1)
is "$?" 1 "an out-of-range value of the stage's setting is refused"
like "$out" "range\\.conf:8: 'sleep_ms' is 70000, must be in 0\\.\\.60000 \\(stage t_record\\)" \
	"with FILE:LINE and the stage's range"

write_conf "$T/unused.conf" "profiles = { default = { t_record = { sleep_ms = 40; }; }; };"
out=$("$LADDERD" check-config -c "$T/unused.conf" 2>&1)
is "$?" 1 "the group is unknown when no workflow runs the stage"
like "$out" "unused\\.conf:6: unknown setting 't_record' \\(no stage of the workflows declares settings in it\\)" \
	"and the message says why"

# The value reaches the stage: a rung sleeps sleep_ms, not the default.
printf '{ "rung": { "name": "r", "kind": "video" } }\n' >"$T/rung.json"
cp "$T/ok.conf" "$T/ladderd.conf"
stage t_record rung
is "$rc" 0 "ladderd stage runs t_record with the profile's setting"
slept=$(json "$out" 'int((d["t_record"]["end_us"] - d["t_record"]["start_us"]) / 1000)')
ok "the rung slept sleep_ms (40 ms, got $slept ms), not the default 300" \
	test "$slept" -ge 40 -a "$slept" -lt 290

# The built-in stages' settings: drifted facts fixed in their tables.
write_conf "$T/redir.conf" "download = {
  low_speed_limit = 1000; low_speed_time = 5;
  max_redirects = 60; };"
out=$("$LADDERD" check-config -c "$T/redir.conf" 2>&1)
is "$?" 1 "download.max_redirects above the stage's range is refused"
like "$out" "redir\\.conf:8: 'max_redirects' is 60, must be in 0\\.\\.50 \\(stage download\\)" \
	"with the download stage's range (low_speed_* accepted before it)"
write_conf "$T/preset.conf" "profiles = { fast = {
  video = { prest = \"fast\"; }; }; };"
out=$("$LADDERD" check-config -c "$T/preset.conf" 2>&1)
like "$out" "preset\\.conf:7: unknown setting 'prest' \\(no stage of the workflows declares profile\\.video\\.prest\\)" \
	"a misspelt key of a stage's group is refused with FILE:LINE"
out=$("$LADDERD" check-config -c "$LADDERD_SRC/etc/ladderd.conf" 2>&1)
like "$out" '  profile\.video\.preset = "veryfast"' \
	"video.preset defaults to veryfast (the benchmark's and README's)"

# The daemon checks the same through its worker, and refuses to start.
out=$("$LADDERD" -c "$T/range.conf" $ALLOW_ROOT 2>&1)
is "$?" 1 "the daemon refuses to start with an out-of-range stage setting"
like "$out" "range\\.conf:8: 'sleep_ms' is 70000, must be in 0\\.\\.60000" \
	"and says FILE:LINE"

# ... and on SIGHUP keeps the running config, quoting the stage's range.
cp "$T/ok.conf" "$T/ladderd.conf"
start_daemon "$T/ladderd.conf"
ok "the daemon starts with the test stage's setting" test -s "$T/status/_daemon.json"
sed -i 's/sleep_ms = 40;/sleep_ms = 70000;/' "$T/ladderd.conf"
kill -HUP "$DAEMON_PID"
wait_for 20 sh -c "grep -q 'config not reloaded' '$T/daemon.log'"
like "$(grep 'config not reloaded' "$T/daemon.log" | head -n 1)" \
	"ladderd\\.conf:7: 'sleep_ms' is 70000, must be in 0\\.\\.60000 \\(stage t_record\\)" \
	"a reload with an out-of-range stage setting is refused the same way"
stop_daemon
is "$?" 0 "and the daemon stops cleanly"

# ladderd-stages(7) is what `ladderd settings --man` writes ...
: >"$T/empty.conf"
"$LADDERD" settings --man -c "$T/empty.conf" >"$T/gen.7"
sed -n '/^\.\\" BEGIN SETTINGS/,/^\.\\" END SETTINGS/p' \
	"$LADDERD_SRC/stages/ladderd-stages.7" >"$T/page.7"
ok "ladderd-stages(7)'s SETTINGS list is the generated one (make it with ladderd settings --man)" \
	diff -u "$T/gen.7" "$T/page.7"
# ... and lists every setting check-config lists, with the same default.
"$LADDERD" check-config -c "$T/empty.conf" >"$T/check.out" 2>&1
sed -n '/^settings$/,/^stages$/s/^  \([^ ]*\) = \(.*\)  (.*/\1 = \2/p' "$T/check.out" \
	>"$T/listed"
ok "check-config lists the built-in stages' settings" test "$(wc -l <"$T/listed")" -ge 20
sed -n 's/^\.It Li "\(.*\)"$/\1/p' "$T/page.7" |
	sed 's/\\(dq/"/g; s/\\-/-/g; s/\\e/\\/g' >"$T/paged"
missing=$(grep -vxF -f "$T/paged" "$T/listed")
is "$missing" "" "the man page lists each with check-config's default"
done_testing
