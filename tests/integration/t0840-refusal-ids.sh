#!/bin/sh
# Finding 11 of issue 9: a refused manifest does not reserve the task_id
# it names. Its status and failed folder go under an id derived from the
# file's name (name-xxxxxx); a later good manifest with that task_id runs.
# Refusals checked: an unknown key, a bad source path, a missing local
# source, a source reached through a symlink.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile download 300) };"
mkdir -p "$T/ingest/media" "$T/elsewhere"
echo data >"$T/elsewhere/x.mov"
ln -s "$T/elsewhere" "$T/ingest/media/out"
start_daemon "$T/ladderd.conf"

drop() { # NAME JSON
	printf '%s' "$2" >"$T/ingest/.$1.tmp"
	mv "$T/ingest/.$1.tmp" "$T/ingest/$1"
}
n=0
for bad in '{"task_id": "payroll-2026", "sorce": "media/a.mov"}' \
	'{"task_id": "payroll-2026", "source": "../a.mov"}' \
	'{"task_id": "payroll-2026", "source": "media/missing.mov"}' \
	'{"task_id": "payroll-2026", "source": "media/out/x.mov"}'; do
	n=$((n + 1))
	drop "squat$n.json" "$bad"
	wait_for 10 sh -c "ls '$T'/failed/*/squat$n.json >/dev/null 2>&1"
	d=$(dirname "$(ls "$T"/failed/*/squat$n.json 2>/dev/null | head -n 1)")
	like "$(basename "$d")" "^squat$n-[0-9a-f]{6}\$" "refusal $n is filed under an id derived from its file name"
	wait_state "$(basename "$d")" failed 10
	is "$(state_of "$(basename "$d")")" failed "refusal $n has a failed status under that id"
	ok "refusal $n did not create status/payroll-2026" test ! -e "$T/status/payroll-2026"
	ok "refusal $n did not create failed/payroll-2026" test ! -e "$T/failed/payroll-2026"
done
like "$(json "$d/error.json" 'd["message"]')" 'symbolic link' "the symlinked source was refused for that reason"

echo good >"$T/ingest/media/good.mov"
drop good.json '{"task_id": "payroll-2026", "source": "media/good.mov"}'
wait_state payroll-2026 complete 20
is "$(state_of payroll-2026)" complete "a later good manifest with that task_id completes"
ok "and is published" test -d "$T/publish/payroll-2026"

drop dup.json '{"task_id": "payroll-2026", "source": "media/good.mov"}'
wait_for 10 sh -c "ls '$T'/failed/*/dup.json >/dev/null 2>&1"
d=$(dirname "$(ls "$T"/failed/*/dup.json | head -n 1)")
like "$(json "$d/error.json" 'd["message"]')" "task_id 'payroll-2026' already exists" "a duplicate of a live id is still refused"
is "$(state_of payroll-2026)" complete "and the existing task's status is untouched"

stop_daemon
is "$?" 0 "daemon stops cleanly"
done_testing
