#!/bin/sh
# t0210-download-ssrf.sh - the download stage's address policy (README
# "Network safety", issue 9 finding 3), against tests/tools/httpd.py on
# 127.0.0.1: by default loopback and other internal addresses are refused
# before anything is sent, also when a permitted server redirects there;
# download.allow_networks opens a range; a refused address and an
# unreachable one give the same message; a URL the operator typed
# (task.source_trusted) is not checked; the body is stored 0600; a bad
# CIDR in the config is refused with file and line.
. "$(dirname "$0")/lib.sh"

require python3 ladderd

mkdir -p "$T/www"
head -c 100000 /dev/urandom >"$T/www/clip.mp4"
start_httpd httpd -v ||
	bail_out "httpd.py did not start: $(cat "$T/httpd.log")"
BASE="http://127.0.0.1:$PORT"
write_conf "$T/ladderd.conf"

# mkctx NAME SOURCE [DOWNLOAD_ARGS_JSON [TRUSTED]]: $T/NAME.json
mkctx() {
	mkdir -p "$T/$1"
	cat >"$T/$1.json" <<JSON
{
	"task": { "id": "$1", "main_task_id": "$1", "work_dir": "$T/$1",
		"publish_root": "$T/publish", "status_root": "$T/status",
		"profile": "default", "source": "$2",
		"source_trusted": ${4:-false} },
	"download": ${3:-{\}}
}
JSON
}
nothing_left() {
	[ -z "$(ls -A "$T/$1/source" 2>/dev/null)" ]
}
requests() { # PATH: how many requests for PATH the server saw
	grep -c "\"GET $1[ ?]" "$T/httpd.log"
}

# --- the default refuses loopback, before sending anything ---------------
mkctx deflt "$BASE/clip.mp4"
stage -v download deflt
is "$rc" 1 "default policy: 127.0.0.1 refused, exit 1 (fail)"
is "$msg" "GET $BASE/clip.mp4: cannot connect to the server" \
	"default policy: the message does not say why"
like "$(cat "$T/deflt.err")" "refused by download.allow_networks policy" \
	"default policy: the debug log says it was the policy"
is "$(requests /clip.mp4)" 0 "default policy: no request reached the server"
ok "default policy: no file left" nothing_left deflt

for url in "http://localhost:$PORT/clip.mp4" "http://[::1]:$PORT/clip.mp4" \
	"http://[::ffff:127.0.0.1]:$PORT/clip.mp4" "http://2130706433:$PORT/clip.mp4" \
	"http://169.254.169.254/latest/meta-data/" "http://0.0.0.0:$PORT/clip.mp4"; do
	mkctx other "$url"
	stage -v download other
	is "$rc" 1 "default policy: $url refused"
	like "$(cat "$T/other.err")" "refused by download.allow_networks" \
		"default policy: $url refused by the policy"
done
is "$(requests /clip.mp4)" 0 "no form of loopback reached the server"

# --- allow_networks opens a range; the body is 0600 ------------------------
mkctx allowed "$BASE/clip.mp4" '{ "allow_networks": ["127.0.0.1/32"] }'
stage -v download allowed
is "$rc" 0 "allow_networks 127.0.0.1/32: exit 0"
ok "allow_networks: bytes identical" cmp "$T/www/clip.mp4" "$T/allowed/source/clip.mp4"
is "$(stat -c %a "$T/allowed/source/clip.mp4")" 600 "the downloaded body is 0600"

# --- a redirect from a permitted server to a refused address --------------
# 127.0.0.2 is loopback too, outside the opened /32.
mkctx hop "$BASE/location?to=http://127.0.0.2:$PORT/clip.mp4" \
	'{ "allow_networks": ["127.0.0.1/32"] }'
stage -v download hop
is "$rc" 1 "302 to 127.0.0.2: refused, exit 1 (fail, not retried)"
is "$msg" "GET $BASE/location?to=http://127.0.0.2:$PORT/clip.mp4: cannot connect to the server" \
	"302 to 127.0.0.2: message"
like "$(cat "$T/hop.err")" "refused by download.allow_networks" \
	"302 to 127.0.0.2: refused by the policy"
is "$(requests /location)" 1 "302 to 127.0.0.2: the permitted server was asked"
ok "302 to 127.0.0.2: no file left" nothing_left hop

mkctx hopmeta "$BASE/location?to=http://169.254.169.254/latest/meta-data/" \
	'{ "allow_networks": ["127.0.0.1/32"] }'
stage -v download hopmeta
is "$rc" 1 "302 to 169.254.169.254: refused"
like "$(cat "$T/hopmeta.err")" "refused by download.allow_networks" \
	"302 to 169.254.169.254: refused by the policy"

mkctx hopv6 "$BASE/location?to=http://%5B::ffff:127.0.0.2%5D:$PORT/clip.mp4" \
	'{ "allow_networks": ["127.0.0.1/32"] }'
stage -v download hopv6
is "$rc" 1 "302 to [::ffff:127.0.0.2]: refused"

# --- refused and unreachable read the same ----------------------------------
# With all of loopback open, 127.0.0.2 is merely unreachable (nobody
# listens there): a transient failure, with the same words.
mkctx unreach "$BASE/location?to=http://127.0.0.2:$PORT/clip.mp4" \
	'{ "allow_networks": ["127.0.0.0/8"] }'
stage -v download unreach
is "$rc" 75 "unreachable: exit 75 (retry)"
is "$msg" "GET $BASE/location?to=http://127.0.0.2:$PORT/clip.mp4: cannot connect to the server" \
	"unreachable: the same message as refused"

# --- the operator's own URL (ladderd run) is trusted --------------------------
mkctx trusted "$BASE/clip.mp4" '{}' true
stage -v download trusted
is "$rc" 0 "task.source_trusted: loopback allowed"

# --- the config refuses what is not a network ---------------------------------
write_conf "$T/bad.conf" 'download = { allow_networks = [ "127.0.0.1/8" ]; };'
"$LADDERD" check-config -c "$T/bad.conf" >"$T/bad.out" 2>&1
is "$?" 1 "check-config: a CIDR with host bits set is refused"
like "$(cat "$T/bad.out")" "bad.conf:[0-9]+: 'allow_networks': \"127.0.0.1/8\" is not a network" \
	"check-config: message with file and line"
write_conf "$T/good.conf" 'download = { allow_networks = [ "10.0.0.0/8", "fd00::/8" ]; };'
ok "check-config: valid CIDRs pass" "$LADDERD" check-config -c "$T/good.conf"

done_testing
