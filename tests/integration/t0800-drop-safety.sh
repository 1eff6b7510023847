#!/bin/sh
# Finding 1 of issue 9: a drop reaches nothing outside the ingest folder.
# A manifest's source is resolved beneath the ingest folder without
# following any symbolic link (a symlinked folder or file is refused, the
# file it points at stays where it is); only regular files are taken (a
# FIFO, a device, a socket are refused without being opened, so the daemon
# never blocks nor copies endless zeros). Across file systems (an ingest
# folder on /dev/shm) a refused symlink is never copied into failed/, and
# what is copied is created with the umask (0640), not 0644.
. "$(dirname "$0")/lib.sh"
SHM=$(mktemp -d /dev/shm/ladderd-t0800.XXXXXX)
trap 'kill_all; rm -rf "$SHM"; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; },
          { path = \"$SHM/ingest\"; profile = \"quick\"; } );
profiles = { quick = {
    ladder = ( { name = \"only\"; height = 360; bitrate = 500; } );
    workflow = { pre = ( \"download\" ); rendition = ( \"t_record\" ); post = ( \"t_record\", \"publish\" ); };
}; };"
mkdir -p "$T/elsewhere" "$T/ingest/sub" "$T/ingest/media" "$SHM/ingest/media"
echo 'SECRET-SHADOW' >"$T/elsewhere/shadow"
echo 'SECRET-PRIVATE' >"$T/elsewhere/private.mp4"
echo 'SECRET-CONF' >"$T/secret.conf"
chmod 600 "$T/elsewhere/shadow" "$T/elsewhere/private.mp4" "$T/secret.conf"
ln -s "$T/elsewhere" "$T/ingest/sub/d"
start_daemon "$T/ladderd.conf"

drop() { # DIR NAME JSON
	printf '%s' "$3" >"$1/.$2.tmp"
	mv "$1/.$2.tmp" "$1/$2"
}
# refused DIR NAME REGEX DESC: the drop ends in failed/<id>/ with REGEX
refused() {
	wait_for 10 sh -c "ls '$T'/failed/*/'$2' >/dev/null 2>&1"
	f=$(ls "$T"/failed/*/"$2" 2>/dev/null | head -n 1)
	if [ -z "$f" ]; then
		_report 1 "$4" "no failed/*/$2"
		return
	fi
	wait_for 10 test -s "$(dirname "$f")/error.json"
	like "$(json "$(dirname "$f")/error.json" 'd["message"]')" "$3" "$4"
}
no_secret() { # DESC
	out=$(grep -rl 'SECRET-' "$T/failed" "$T/publish" "$T/spool" 2>/dev/null)
	is "$out" "" "$1"
}

drop "$T/ingest" shadow.json '{"task_id": "shadow", "source": "sub/d/shadow"}'
refused "$T/ingest" shadow.json 'symbolic link' "a source under a symlinked folder is refused"
ok "the file it named stays where it was" test -s "$T/elsewhere/shadow"
drop "$T/ingest" private.json '{"task_id": "private", "source": "sub/d/private.mp4"}'
refused "$T/ingest" private.json 'symbolic link' "a media source under a symlinked folder is refused"
ok "and stays where it was" test -s "$T/elsewhere/private.mp4"
ok "nothing is published for either" test ! -e "$T/publish/private" -a ! -e "$T/publish/shadow"
ln -s "$T/elsewhere/private.mp4" "$T/ingest/media/link.mp4"
drop "$T/ingest" link.json '{"task_id": "link", "source": "media/link.mp4"}'
refused "$T/ingest" link.json 'symbolic link' "a source that is a symlink is refused"
mkfifo "$T/ingest/media/pipe.mp4"
drop "$T/ingest" fifo.json '{"task_id": "fifo", "source": "media/pipe.mp4"}'
refused "$T/ingest" fifo.json 'not a regular file' "a FIFO source is refused (the daemon does not block on it)"
if mknod "$T/ingest/media/zero.mp4" c 1 5 2>/dev/null; then
	drop "$T/ingest" dev.json '{"task_id": "dev", "source": "media/zero.mp4"}'
	refused "$T/ingest" dev.json 'not a regular file' "a character device source is refused"
	ok "the device was not copied" sh -c "! find '$T/failed' '$T/spool' -size +1M | grep -q ."
else
	_report 0 "a character device source is refused # SKIP mknod needs root"
fi
no_secret "no secret reached failed/, publish/ or the spool"

# Across file systems: the ingest folder on /dev/shm.
ln -s "$T/secret.conf" "$SHM/ingest/clip.mp4"
wait_for 10 sh -c "ls '$T'/failed/clip-*/error.json"
id=$(ls "$T/failed" | grep '^clip-' | head -n 1)
like "$(json "$T/failed/$id/error.json" 'd["message"]')" 'symbolic links are not taken' "a symlink dropped across file systems is refused"
ok "it is not left in the ingest folder (no refusal loop)" test ! -L "$SHM/ingest/clip.mp4"
is "$(json "$T/failed/$id/error.json" 'd.get("link_target")')" "$T/secret.conf" "error.json records where it pointed"
no_secret "the secret it pointed at was not copied"
ok "the secret is untouched" test -s "$T/secret.conf"
mkfifo "$SHM/ingest/pipe.mp4"
wait_for 10 sh -c "ls '$T'/failed/pipe-*/error.json"
id=$(ls "$T/failed" | grep '^pipe-' | head -n 1)
like "$(json "$T/failed/$id/error.json" 'd["message"]' 2>/dev/null)" 'not a regular file' "a FIFO dropped across file systems is refused"
drop "$SHM/ingest" bad.json '{"task_id": "x", '
refused "$SHM/ingest" bad.json 'not valid JSON' "a bad manifest across file systems goes to failed/"
f=$(ls "$T"/failed/*/bad.json | head -n 1)
is "$(stat -c %a "$f")" 640 "its copy is created with the umask (0640)"
echo 'good media' >"$SHM/ingest/media/good.mov"
drop "$SHM/ingest" good.json '{"task_id": "good", "source": "media/good.mov"}'
wait_state good complete 20
is "$(state_of good)" complete "a regular source across file systems is still taken"
ok "and its source left the ingest folder" test ! -e "$SHM/ingest/media/good.mov"
echo 'plain' >"$T/ingest/plain.mp4.tmp"
mv "$T/ingest/plain.mp4.tmp" "$T/ingest/plain.mp4"
wait_for 10 sh -c "ls '$T/publish' | grep -q '^plain-'"
ok "a plain drop still works" sh -c "ls '$T/publish' | grep -q '^plain-'"

stop_daemon
is "$?" 0 "daemon stops cleanly"
done_testing
