#!/bin/sh
# t0480-download-slots.sh - downloads do not hold encoding slots, and a
# transient failure is not retried forever (issue 9 finding 6). With
# max_jobs = 1, a manifest whose source trickles (1 byte per 0.5 s) is
# fetched in a download slot (max_downloads) while a plain drop is encoded
# and completes; a source that always answers 503 is retried max_retries
# times (retry_delay apart, doubling) and then fails with a clear message.
. "$(dirname "$0")/lib.sh"
require python3
trap 'kill_all; _cleanup' EXIT

start_httpd httpd -v --slow-bytes 120 || bail_out "httpd"
write_conf "$T/ladderd.conf" "
max_jobs = 1;
max_downloads = 2;
max_retries = 2;
retry_delay = 1;
download = { allow_networks = [ \"127.0.0.0/8\" ]; low_speed_limit = 1; };
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { $(quick_profile download) };"
start_daemon "$T/ladderd.conf"

drop slow.json "{\"task_id\": \"slow\", \"source\": \"http://127.0.0.1:$PORT/slow\"}"
wait_for 10 sh -c "grep -q '\"GET /slow ' '$T/httpd.log'"
ok "the slow download started" grep -q '"GET /slow ' "$T/httpd.log"
drop flaky.json "{\"task_id\": \"flaky\", \"source\": \"http://127.0.0.1:$PORT/status/503\"}"
echo plain >"$T/plain.mp4"
mv "$T/plain.mp4" "$T/ingest/plain.mp4"
wait_for 10 sh -c "ls '$T/status' | grep -q '^plain-'"
plain=$(task_ids_for plain)
wait_state "$plain" complete 15
is "$(state_of "$plain")" complete "a plain drop completes while the only job slot's neighbour downloads"
is "$(state_of slow)" downloading "the slow download is still going"
like "$(cat "$T/daemon.log")" "job=slow: started to fetch the source" \
	"the download ran in a download slot"

wait_state flaky failed 20
is "$(state_of flaky)" failed "a source that always answers 503 fails in the end"
like "$(json "$T/status/flaky/status.json" 'd["error"]["message"]')" \
	"^gave up after 3 transient failures \\(max_retries\\): GET http://127.0.0.1:$PORT/status/503: HTTP 503\$" \
	"with a clear message"
is "$(grep -c '"GET /status/503 ' "$T/httpd.log")" 3 "it was tried 1 + max_retries times"
ok "its drop is in the failed folder" test -e "$T/failed/flaky/flaky.json"
stop_daemon
is "$?" 0 "the daemon stops with a download in flight"
done_testing
