#!/bin/sh
# t0200-download.sh - the download stage alone (`ladderd stage`), against
# tests/tools/httpd.py on 127.0.0.1: a served file arrives byte for byte;
# HTTP errors, the size limit (with and without Content-Length), refused
# schemes and too many redirects fail with a clear ctx.error.message and
# leave no file behind; a local source is taken as is.
. "$(dirname "$0")/lib.sh"

require python3 ladderd

mkdir -p "$T/www/dir"
head -c 3000000 /dev/urandom >"$T/www/clip.mp4"
head -c 200000 /dev/urandom >"$T/www/big"
head -c 1000 /dev/urandom >"$T/www/dir/we ird;.mp4"

start_httpd httpd ||
	bail_out "httpd.py did not start: $(cat "$T/httpd.log")"
BASE="http://127.0.0.1:$PORT"
write_conf "$T/ladderd.conf"

# mkctx NAME SOURCE [DOWNLOAD_ARGS_JSON [INPUT_JSON]]: $T/NAME.json, a
# context whose work folder is $T/NAME.
mkctx() {
	_dl=${3:-}
	_in=${4:-}
	[ -n "$_dl" ] || _dl='{}'
	# The test servers are on loopback, which the address policy refuses
	# unless opened (t0210 tests the policy itself).
	if [ "$_dl" = '{}' ]; then
		_dl='{ "allow_networks": ["127.0.0.0/8"] }'
	else
		_dl="{ \"allow_networks\": [\"127.0.0.0/8\"], ${_dl#\{}"
	fi
	[ -n "$_in" ] || _in='{}'
	mkdir -p "$T/$1"
	cat >"$T/$1.json" <<JSON
{
	"task": { "id": "$1", "main_task_id": "$1", "work_dir": "$T/$1",
		"publish_root": "$T/publish", "status_root": "$T/status",
		"profile": "default", "source": "$2" },
	"download": $_dl,
	"input": $_in
}
JSON
}
# nothing_left NAME: the source folder holds no file at all (no .part, no
# file with the final name).
nothing_left() {
	[ -z "$(ls -A "$T/$1/source" 2>/dev/null)" ]
}

# --- success -----------------------------------------------------------
mkctx ok "$BASE/clip.mp4"
stage download ok
is "$rc" 0 "download: exit 0"
is "$(json "$out" 'd["input"]["path"]')" "$T/ok/source/clip.mp4" \
	"download: input.path in the source folder"
ok "download: bytes identical" cmp "$T/www/clip.mp4" "$T/ok/source/clip.mp4"
is "$(json "$out" 'd["input"]["bytes"]')" 3000000 "download: input.bytes"
is "$(json "$out" 'd["input"]["url"]')" "$BASE/clip.mp4" "download: input.url"
is "$(json "$out" 'd["input"]["content_type"]')" video/mp4 \
	"download: input.content_type"
is "$(ls "$T/ok/source")" clip.mp4 "download: no .part left"
is "$(json "$out" '"error" in d')" false "download: no ctx.error"

# --- chunked (no Content-Length) ----------------------------------------
mkctx chunked "$BASE/chunked/clip.mp4"
stage download chunked
is "$rc" 0 "chunked: exit 0"
ok "chunked: bytes identical" cmp "$T/www/clip.mp4" "$T/chunked/source/clip.mp4"

# --- name sanitised -----------------------------------------------------
mkctx name "$BASE/dir/we%20ird%3B.mp4"
stage download name
is "$rc" 0 "odd name: exit 0"
is "$(ls "$T/name/source")" "we_ird_.mp4" "odd name: sanitised to [A-Za-z0-9._-]"

# --- HTTP errors --------------------------------------------------------
mkctx e404 "$BASE/missing.mp4"
stage download e404
is "$rc" 1 "404: exit 1 (fail)"
is "$msg" "GET $BASE/missing.mp4: HTTP 404" "404: message"
ok "404: no file left" nothing_left e404

mkctx e503 "$BASE/status/503"
stage download e503
is "$rc" 75 "503: exit 75 (retry)"
like "$msg" "HTTP 503" "503: message"
ok "503: no file left" nothing_left e503

# --- size limit -----------------------------------------------------------
mkctx big "$BASE/clip.mp4" '{ "max_bytes": 100000 }'
stage download big
is "$rc" 1 "max_bytes: exit 1 (fail)"
like "$msg" "max_bytes.*100000" "max_bytes: message names the limit"
ok "max_bytes: no file left" nothing_left big

mkctx bigchunk "$BASE/chunked/clip.mp4" '{ "max_bytes": 100000 }'
stage download bigchunk
is "$rc" 1 "max_bytes chunked: exit 1 (fail)"
like "$msg" "max_bytes.*100000" "max_bytes chunked: message names the limit"
ok "max_bytes chunked: no file left" nothing_left bigchunk

# --- schemes ----------------------------------------------------------------
mkctx file "file://$T/www/clip.mp4"
stage download file
is "$rc" 1 "file://: exit 1 (fail)"
is "$msg" "URL scheme 'file' is not allowed (allowed: http, https)" \
	"file://: message"
ok "file://: no file left" nothing_left file

mkctx httpsonly "$BASE/clip.mp4" '{ "protocols": ["https"] }'
stage download httpsonly
is "$rc" 1 "protocols [https]: http refused, exit 1"
is "$msg" "URL scheme 'http' is not allowed (allowed: https)" \
	"protocols [https]: message"

mkctx escape "$BASE/location?to=file://$T/www/clip.mp4"
stage download escape
is "$rc" 1 "redirect to file://: exit 1 (fail)"
like "$msg" "^GET $BASE/location.*: .*file" "redirect to file://: message"
ok "redirect to file://: no file left" nothing_left escape

# --- redirects --------------------------------------------------------------
mkctx redir "$BASE/redirect/3"
stage download redir
is "$rc" 0 "3 redirects: exit 0"
ok "3 redirects: bytes of /big" cmp "$T/www/big" "$T/redir/source/3"
is "$(json "$out" 'd["input"].get("effective_url")')" "$BASE/big" \
	"3 redirects: input.effective_url"

mkctx redir6 "$BASE/redirect/6"
stage download redir6
is "$rc" 1 "6 redirects (default max 5): exit 1 (fail)"
like "$msg" "^GET $BASE/redirect/6: .*[Rr]edirect" "6 redirects: message"
ok "6 redirects: no file left" nothing_left redir6

mkctx redir2 "$BASE/redirect/3" '{ "max_redirects": 2 }'
stage download redir2
is "$rc" 1 "max_redirects 2: 3 redirects fail, exit 1"

# --- network errors and timeouts ---------------------------------------------
mkctx slow "$BASE/slow" '{ "timeout": 1 }'
stage download slow
is "$rc" 75 "timeout: exit 75 (retry)"
like "$msg" "^GET $BASE/slow: .*[Tt]imed? ?out" "timeout: message"
ok "timeout: no file left" nothing_left slow

# A port nobody listens on: the server's port after it has gone is racy,
# so take port 1 (privileged, never ours).
mkctx refused "http://127.0.0.1:1/x.mp4"
stage download refused
is "$rc" 75 "connection refused: exit 75 (retry)"
is "$msg" "GET http://127.0.0.1:1/x.mp4: cannot connect to the server" \
	"connection refused: message"

# --- local source -------------------------------------------------------------
mkctx local "$T/www/clip.mp4"
stage download local
is "$rc" 0 "local: exit 0"
like "$(cat "$T/local.err")" "stage download: skip" "local: skipped (nothing fetched)"
is "$(json "$out" 'd["input"]["path"]')" "$T/www/clip.mp4" \
	"local: input.path is the source"
ok "local: nothing copied" nothing_left local

mkctx claimed "$T/www/clip.mp4" '{}' "{ \"path\": \"$T/spool/claimed.mp4\" }"
stage download claimed
is "$rc" 0 "claimed: exit 0"
is "$(json "$out" 'd["input"]["path"]')" "$T/spool/claimed.mp4" \
	"claimed: input.path kept"

mkctx nolocal "$T/www/nope.mp4"
stage download nolocal
is "$rc" 1 "missing local: exit 1 (fail)"
is "$msg" "source '$T/www/nope.mp4' not found" "missing local: message"

done_testing
