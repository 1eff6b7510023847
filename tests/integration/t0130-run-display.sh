#!/bin/sh
# `ladderd run` on a real terminal (tmux): the progress area is redrawn in
# place with log lines above it, the summary table is on the screen at the
# end, internal unit names never show, info lines only with -v; through a
# pipe: plain lines, no control codes.
. "$(dirname "$0")/lib.sh"

require tmux
write_conf "$T/ladderd.conf"
mkclip "$T/in.mp4" || skip_all "ffmpeg cannot make a clip"
SOCK="$T/tmux.sock"
trap 'tmux -S "$SOCK" kill-server 2>/dev/null; _cleanup' EXIT
# One session lives as long as the test: a server whose last session was
# just killed is still exiting when the next new-session connects to it.
tmux -S "$SOCK" new-session -d -s keep "sleep 600" ||
	skip_all "tmux cannot start a server"

# run_tty NAME ARGS...: `ladderd run ARGS` in a 100x40 tmux pane; waits for
# it to end, leaves its screen and scroll-back in $T/NAME.screen.
run_tty() {
	local name=$1
	shift
	printf '%s ' "$LADDERD" run -c "$T/ladderd.conf" "$@" >"$T/$name.cmd"
	printf '; echo EXIT=$? >%s; sleep 600\n' "$T/$name.exit" >>"$T/$name.cmd"
	tmux -S "$SOCK" new-session -d -s "$name" -x 100 -y 40 \
		"sh $T/$name.cmd" &&
	wait_for 60 test -s "$T/$name.exit" &&
	tmux -S "$SOCK" capture-pane -p -J -S -500 -t "$name" >"$T/$name.screen"
	tmux -S "$SOCK" kill-session -t "$name" 2>/dev/null
	return 0
}

run_tty quiet "$T/in.mp4" -o "$T/out" --task-id quiet
screen=$(cat "$T/quiet.screen")
is "$(cat "$T/quiet.exit")" "EXIT=0" "run on a terminal completes"
like "$screen" 'rung +size +codec +peak kbit/s +avg kbit/s' "the summary table's header is on the screen"
like "$screen" '360p +640x360 +avc1\.[0-9a-f]+ +[0-9]+ +[0-9]+' "a row per rung: size, codec, peak and average bit rate"
like "$screen" 'audio +- +mp4a\.40\.2 +[0-9]+ +[0-9]+' "the audio rung's row"
like "$screen" "package +$T/out/quiet/master.m3u8" "the package paths are in the table"
ok "no info lines without -v" sh -c "! grep -q 'info:' '$T/quiet.screen'"
ok "no internal unit name on the screen" sh -c "! grep -Eq '_decode|_group' '$T/quiet.screen'"
ok "the progress area is gone at the end (no bar left)" sh -c "! grep -q '\[[#-]\{20\}\]' '$T/quiet.screen'"

run_tty verbose -v "$T/in.mp4" -o "$T/out" --task-id verbose
is "$(cat "$T/verbose.exit")" "EXIT=0" "run -v on a terminal completes"
ok "-v shows the info lines" grep -q 'info: job=verbose: rendition=360p: ok' "$T/verbose.screen"
# Every log line starts a screen line of its own: nothing of the progress
# area (task line, bars) before or after it on that line.
ok "no log line broken into the progress line" sh -c "
	! grep -E 'ladderd\[[0-9]+\]' '$T/verbose.screen' | grep -Ev '^ladderd\[[0-9]+\]: (info|warning|error|debug): [^#]*\$'"
ok "no progress text glued to a log line" sh -c "! grep -E '(elapsed|\] +[0-9]+%).*ladderd\[' '$T/verbose.screen'"
ok "no internal unit name with -v either" sh -c "! grep -Eq '_decode|_group' '$T/verbose.screen'"
like "$(cat "$T/verbose.screen")" 'rung +size +codec' "the summary table after -v too"

# A failed run: its error above, no table, exit 1.
echo "not media" >"$T/bad.mp4"
run_tty bad "$T/bad.mp4" -o "$T/out" --task-id bad
is "$(cat "$T/bad.exit")" "EXIT=1" "a failed run on a terminal exits 1"
like "$(cat "$T/bad.screen")" "warning: job=bad: failed: probe: " "its error is on the screen"
ok "no summary table after a failure" sh -c "! grep -q 'peak kbit/s' '$T/bad.screen'"

# Not a terminal: the same run through pipes has no control codes.
"$LADDERD" run -c "$T/ladderd.conf" "$T/in.mp4" -o "$T/out" --task-id piped 2>&1 | cat >"$T/piped.out"
ok "through a pipe: no escape or carriage-return bytes" sh -c "! grep -q \"\$(printf '[\033\r]')\" '$T/piped.out'"
like "$(cat "$T/piped.out")" "$T/out/piped/master.m3u8" "through a pipe: the package path is printed"
ok "through a pipe: no internal unit name" sh -c "! grep -Eq '_decode|_group' '$T/piped.out'"
# stdout a pipe, stderr the terminal: scripts still get the paths.
run_tty split "$T/in.mp4" -o "$T/out" --task-id split ">$T/split.paths"
ok "stdout to a file under the display gets the package paths" grep -qx "$T/out/split/master.m3u8" "$T/split.paths"
done_testing
