#!/bin/sh
# Findings 8 and 12 of issue 9: the daemon runs with a umask (default 027)
# so nothing it writes in the spool, status or failed folders is readable
# by other users (metadata, webhook URLs, failed sources); the spool itself
# is 0700 and its config snapshot spool/running.conf (it holds
# notify.secret) is 0600. The published package stays world-readable (the
# publish stage's world_readable argument, default true). A bad umask is
# refused with FILE:LINE.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

umask 022 # what a root shell or CI has: the daemon must not rely on it
write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
notify = { secret = \"whsec_c2VjcmV0LXNob3VsZC1ub3QtbGVhaw==\"; webhook = \"http://127.0.0.1:9/\"; };
profiles = { quick = {
    ladder = ( { name = \"only\"; height = 360; bitrate = 500; } );
    workflow = { pre = (); rendition = ( \"t_record\" ); post = ( \"t_record\", \"publish\" ); };
}; };"
chmod 600 "$T/ladderd.conf"
start_daemon "$T/ladderd.conf"

printf '{"task_id": "meta", "source": "media/a.mov", "metadata": {"customer": "acme"}}' >"$T/m.tmp"
mkdir -p "$T/ingest/media"
echo data >"$T/ingest/media/a.mov"
mv "$T/m.tmp" "$T/ingest/meta.json"
printf '{"task_id": "bad", "sorce": "x"}' >"$T/b.tmp"
mv "$T/b.tmp" "$T/ingest/bad.json"
wait_state meta complete 20
is "$(state_of meta)" complete "the task completes"
wait_for 10 sh -c "ls '$T'/failed/*/bad.json"

mode() { stat -c %a "$1"; }
is "$(mode "$T/spool/running.conf")" 600 "spool/running.conf (holds the secret) is 0600"
is "$(mode "$T/spool")" 700 "the spool folder is 0700"
others=$(find "$T/spool" "$T/status" "$T/failed" -mindepth 1 -perm /o=rwx 2>/dev/null)
is "$others" "" "nothing in spool/, status/ or failed/ is open to other users"
ok "status files were written (the check saw something)" test -s "$T/status/meta/events.ndjson"
is "$(mode "$T/status/meta/events.ndjson")" 640 "events.ndjson is 0640 (umask 027)"
is "$(mode "$T/status/meta")" 750 "a status folder is 0750"
f=$(ls "$T"/failed/*/bad.json | head -n 1)
is "$(mode "$f")" 640 "a refused drop in failed/ is 0640"
is "$(find "$T/publish/meta" ! -perm -o=r | wc -l | tr -d ' ')" 0 "the published package is world-readable"
is "$(mode "$T/publish/meta")" 755 "the package folder is 0755"
stop_daemon
is "$?" 0 "daemon stops cleanly"

printf 'umask = "0999";\n' >"$T/bad.conf"
out=$("$LADDERD" check-config -c "$T/bad.conf" 2>&1)
is "$?" 1 "a bad umask is refused"
like "$out" "bad.conf:1: .*umask" "with FILE:LINE"
printf 'umask = "077";\n' >"$T/u.conf"
like "$("$LADDERD" check-config -c "$T/u.conf" 2>&1)" "umask +077" "check-config prints the umask"
done_testing
