#!/usr/bin/env bash
# Walkthrough 5 (docs/walkthroughs.md), the logs pipeline, as a script that
# checks what the walkthrough says you see: from a red panel to the log
# lines of one failing request, to its trace, and back to the metrics,
# through the APIs Grafana's panels and links read (Prometheus, Loki,
# Jaeger). It runs against whichever stack runs: on make up, Loki itself;
# on make local, the stand-in for Loki that answers Loki's log queries
# (devstack/lokidoor). make e2e runs it against make local.
#
#   make walkthrough-logs-pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/walkthrough-lib.sh
. scripts/walkthrough-lib.sh
wait_healthy
PROM=http://localhost:9090
LOKI=http://localhost:3100
JAEGER=http://localhost:16686
run=$RANDOM$RANDOM
# promql QUERY: the first value of an instant query (0 when empty).
promql() { curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" | jq -r '(.data.result[0].value[1] // "0")'; }
# logql QUERY [LIMIT]: Loki's answer to a log query over the last 15
# minutes, one JSON object a line: the stream's labels and structured
# metadata, the time and the line, newest first.
logql() {
	curl -fsS -G "$LOKI/loki/api/v1/query_range" --data-urlencode "query=$1" --data-urlencode "limit=${2:-100}" \
		--data-urlencode since=15m | jq -c '.data.result[] | .stream as $s | .values[] | $s + {ts: .[0], line: .[1]}'
}
wait_200 60 "$LOKI/ready" "Loki ready"

step "1. A red panel: MySQL goes away, and the overview's 5xx ratio rises"
make --no-print-directory chaos-mysql-down
trap 'make --no-print-directory chaos-reset >/dev/null; rm -rf "$tmp"' EXIT
for i in $(seq 1 12); do
	printf '%s ' "$(status http://localhost:8000/users/1 -H "X-Request-ID: workshop-red-$run-$i")"
	sleep 0.25
done
echo
# The overview's "5xx ratio, all services" panel, over the last minute.
ratio='(sum(rate(http_server_request_duration_seconds_count{status=~"5.."}[1m])) or vector(0)) / sum(rate(http_server_request_duration_seconds_count[1m]))'
# above0 VALUE: whether an instant query's value is above 0 (NaN is not).
above0() { awk '{ exit !($1 + 0 > 0) }' <<<"$1"; }
red() { above0 "$(promql "$ratio")"; }
eventually 60 "the 5xx ratio above 0" red
echo "5xx ratio, all services: $(promql "$ratio")"

step "2. The panel's link: the Logs dashboard's WARN and ERROR lines, then one failing request"
# The query of the "5xx access lines" panel, as lines: service1's failed
# GET /users/{id}, newest first.
failing() {
	logql '{service_name="service1"} | route="/users/{id}" | status >= 500' 20 >"$tmp/failing"
	grep -q "workshop-red-$run-" "$tmp/failing"
}
eventually 60 "Loki has service1's 5xx access lines of this run" failing
# The first of them: once the breaker opened, service1 answered without
# calling service2, and those requests have service1's lines only.
rid=$(jq -r --arg run "workshop-red-$run-" 'select(.request_id | startswith($run)) | .request_id' "$tmp/failing" | sort -V | head -1)
jq -r 'select(.request_id | startswith("workshop-red-")) | "  \(.severity_text) \(.service_name) \(.line) status=\(.status) request_id=\(.request_id)"' "$tmp/failing" | head -3
echo "request_id: $rid"

step "3. One request across services: every line with its request_id"
# The "One request across services" panel, with request_id=$rid.
both() {
	logql "{service_name=~\".+\"} | request_id=\"$rid\"" >"$tmp/one"
	grep -q '"service_name":"service2"' "$tmp/one" && grep -q '"service_name":"service1"' "$tmp/one"
}
eventually 30 "lines of both services for $rid" both
jq -r '"  \(.severity_text)\t\(.service_name)\t\(.line)\t\(.route // "")\t\(.status // "")"' "$tmp/one" | column -t -s $'\t'
jq -e 'select(.service_name == "service2" and .severity_text == "ERROR")' "$tmp/one" >/dev/null ||
	fail "no ERROR line of service2 for $rid"
tid=$(jq -r 'select(.trace_id != null) | .trace_id' "$tmp/one" | sort -u)
[[ $tid =~ ^[0-9a-f]{32}$ ]] || fail "the request's lines do not share one trace_id: $tid"
echo "every line carries trace_id $tid (the derived field's \"View trace in Jaeger\")"

step "4. To its trace in Jaeger: the error spans of that request"
has_trace() {
	curl -s "$JAEGER/api/traces/$tid" >"$tmp/trace.json"
	jq -e '[.data[]?.spans[] | select(any(.tags[]; .key == "otel.status_code" and .value == "ERROR"))] | length > 0' "$tmp/trace.json" >/dev/null
}
eventually 30 "Jaeger has trace $tid with its errors" has_trace
jq -r '.data[0] as $t | $t.spans[] | select(any(.tags[]; .key == "otel.status_code" and .value == "ERROR")) |
	"  ERROR \($t.processes[.processID].serviceName) \(.operationName)"' "$tmp/trace.json" | sort -u
jq -e '[.data[0].spans[] | .tags[] | select(.key == "request_id") | .value] | any(. == "'"$rid"'")' "$tmp/trace.json" >/dev/null ||
	fail "the trace's spans do not carry request_id $rid"

step "5. And back: the trace's lines (Jaeger's \"Logs for this span\"), its route's metrics (\"Metrics for this span\")"
logql "{service_name=~\".+\"} | trace_id=\"$tid\"" >"$tmp/bytrace"
[[ $(jq -r .request_id "$tmp/bytrace" | sort -u) == "$rid" ]] || fail "the trace's lines are not the request's"
echo "  {service_name=~\".+\"} | trace_id=\"$tid\": $(wc -l <"$tmp/bytrace") lines, all of request $rid"
route_ratio='(sum(rate(http_server_request_duration_seconds_count{service="service1", route="/users/{id}", status=~"5.."}[1m])) or vector(0)) / sum(rate(http_server_request_duration_seconds_count{service="service1", route="/users/{id}"}[1m]))'
# The failures were a few seconds ago: the services flush every 2 s and
# Prometheus scrapes every 5 s.
route_failed() { above0 "$(promql "$route_ratio")"; }
eventually 30 "the trace's route shows its 5xx" route_failed
echo "  5xx ratio of service1 GET /users/{id}: $(promql "$route_ratio")"

step "6. Decisions in the pipeline: a successful probe is logged, and not shipped"
make --no-print-directory chaos-reset >/dev/null
wait_healthy
curl -s -o /dev/null -H "X-Request-ID: workshop-probe-$run" http://localhost:8000/readyz
curl -s -o /dev/null -H "X-Request-ID: workshop-after-$run" http://localhost:8000/users/1
shipped() { [[ -n $(logql "{service_name=\"service1\"} | request_id=\"workshop-after-$run\"") ]]; }
eventually 30 "the request after the probe in Loki" shipped
logged() { scripts/logs service1 | grep -F "workshop-probe-$run" >"$tmp/probe"; }
eventually 10 "the probe's line in service1's output" logged
echo "  service1's output: $(jq -c '{level, route, status, request_id}' "$tmp/probe")"
[[ -z $(logql "{service_name=\"service1\"} | request_id=\"workshop-probe-$run\"") ]] ||
	fail "the successful probe's line reached Loki"
echo "  Loki: no line for workshop-probe-$run (dropped by the collector's drop_probes); the request after it arrived"
printf '\nlogs pipeline walkthrough: all steps passed\n'
