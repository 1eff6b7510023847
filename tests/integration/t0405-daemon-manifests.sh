#!/bin/sh
# Job manifests: a URL source fetched from a test HTTP server, a local
# source, metadata passed through, and every kind of bad manifest refused
# with its reason, moved to the failed folder with an error.json.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
max_jobs = 2;
download = { allow_networks = [ \"127.0.0.0/8\" ]; };  # the test server
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile download) };"
mkdir -p "$T/www"
head -c 100000 /dev/urandom >"$T/www/clip.mp4"
start_httpd httpd || bail_out "httpd.py did not start"
start_daemon "$T/ladderd.conf"

# A good manifest with a URL source and metadata.
drop url.json "{\"task_id\": \"from-url\", \"source\": \"http://127.0.0.1:$PORT/clip.mp4\",
  \"profile\": \"quick\", \"metadata\": {\"asset\": 42}}"
wait_state from-url complete 20
is "$(state_of from-url)" complete "a manifest with an http source completes"
like "$(cat "$T/status/from-url/events.ndjson")" '"state":"downloading"' "it went through downloading"
is "$(json "$T/status/from-url/status.json" 'd["metadata"]["asset"]')" 42 "metadata is passed through to status events"
like "$(head -n 1 "$T/status/from-url/events.ndjson")" '"metadata":\{"asset":42\}' "the first (queued) event carries the metadata"

# A manifest with a local source in a subfolder.
mkdir -p "$T/ingest/media"
echo local >"$T/ingest/media/local.mov"
drop local.json '{"task_id": "local-one", "source": "media/local.mov"}'
wait_state local-one complete 20
is "$(state_of local-one)" complete "a manifest with a local source completes"
ok "the local source was claimed" test ! -e "$T/ingest/media/local.mov"

# Bad manifests: each refused with its reason.
check_refused badjson.json '{"task_id": "x", ' 'not valid JSON' "bad JSON"
check_refused typo.json '{"task_id": "typo", "sorce": "a.mp4"}' "unknown key 'sorce'" "unknown key"
check_refused nosrc.json '{"task_id": "nosrc"}' 'no "source"' "missing source"
check_refused badid.json '{"task_id": "../etc", "source": "a.mp4"}' 'invalid task_id' "bad task_id"
check_refused scheme.json '{"source": "file:///etc/passwd"}' 'scheme not allowed' "file:// URL"
check_refused prof.json '{"source": "http://127.0.0.1/x.mp4", "profile": "nope"}' "unknown profile 'nope'" "unknown profile"
check_refused escape.json '{"source": "../../etc/passwd"}' 'relative to the ingest folder' "a source outside the ingest folder"
check_refused gone.json '{"task_id": "gone", "source": "missing.mov"}' "source 'missing.mov' not found" "a missing local source"
check_refused 404.json "{\"task_id\": \"nf\", \"source\": \"http://127.0.0.1:$PORT/nothing.mp4\"}" 'HTTP 404' "a 404 source fails the task"
big=$("$PY" -c 'print("{\"source\": \"a.mp4\", \"metadata\": {\"pad\": \"" + "x" * 1100000 + "\"}}")')
check_refused big.json "$big" 'larger than 1 MiB' "an oversized manifest"
check_refused dup.json '{"task_id": "from-url", "source": "http://127.0.0.1/x.mp4"}' "task_id 'from-url' already exists" \
	"an existing task_id"
is "$(state_of from-url)" complete "the existing task's status is untouched"
ok "the existing package is untouched" test -s "$T/publish/from-url/renditions.json"

stop_daemon
is "$?" 0 "daemon stops cleanly"
done_testing
