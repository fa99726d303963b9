#!/usr/bin/env bash
# Walkthrough 3 (docs/walkthroughs.md), tracing, as a script that checks
# what the walkthrough says you see, through Jaeger's query API (the API
# Grafana's Jaeger data source and the UI read). It runs against whichever
# stack runs (make up or make local); make e2e runs it against make local.
#
#   make walkthrough-tracing
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/walkthrough-lib.sh
. scripts/walkthrough-lib.sh
wait_healthy
JAEGER=http://localhost:16686
rid="workshop-trace-$RANDOM$RANDOM"

step "1. One request: the traceresponse header holds the trace ID"
curl -si -H "X-Request-ID: $rid" http://localhost:8000/users/1 | tr -d '\r' >"$tmp/r1"
head -20 "$tmp/r1"
tr=$(awk -F': ' 'tolower($1)=="traceresponse" {print $2}' "$tmp/r1")
[[ $tr =~ ^00-([0-9a-f]{32})-([0-9a-f]{16})-01$ ]] || fail "no Traceresponse: 00-<trace id>-<span id>-01 header"
tid=${BASH_REMATCH[1]}
echo "trace ID: $tid"

step "2. Find the trace in Jaeger: by its ID, and by the request_id tag"
# Spans leave in batches (the services' batcher, then the collector's):
# a few seconds.
has_spans() {
	curl -s "$JAEGER/api/traces/$tid" >"$tmp/trace.json"
	(($(jq '[.data[]?.spans[]] | length' "$tmp/trace.json") >= 6))
}
eventually 30 "Jaeger has the trace's 6 spans" has_spans
sleep 2 # stragglers
curl -s "$JAEGER/api/traces/$tid" >"$tmp/trace.json"
echo "$JAEGER/api/traces/$tid: $(jq '[.data[].spans[]] | length' "$tmp/trace.json") spans"
curl -s -G "$JAEGER/api/traces" --data-urlencode service=service1 --data-urlencode "tags={\"request_id\":\"$rid\"}" \
	--data-urlencode lookback=1h >"$tmp/search.json"
jq -e --arg t "$tid" '[.data[].traceID] | any(. == $t or ("0" * (32 - length)) + . == $t)' "$tmp/search.json" >/dev/null ||
	fail "searching service1 for request_id=$rid does not find trace $tid"
echo "search service=service1 tags={\"request_id\":\"$rid\"}: found"

step "3. Read the tree: five levels, two services"
# Each span as "service operation (kind) <- parent's operation".
jq -r '.data[0] as $t | ($t.spans | map({(.spanID): .}) | add) as $by |
	$t.spans[] | [$t.processes[.processID].serviceName, .operationName,
		((.tags[] | select(.key == "span.kind") | .value) // "internal"),
		((.references[0].spanID // "") as $p | if $p == "" then "(root)" else ($by[$p].operationName // "?") end)] | @tsv' \
	"$tmp/trace.json" | sort | tee "$tmp/tree" | column -t -s $'\t'
for want in $'service1\tGET /users/{id}\tserver\t(root)' \
	$'service1\tservice2-request\tinternal\tGET /users/{id}' \
	$'service1\tHTTP GET\tclient\tservice2-request' \
	$'service2\tGET /users/{id}\tserver\tHTTP GET' \
	$'service2\tservice2-db\tinternal\tGET /users/{id}' \
	$'service2\tsql.conn.query\tclient\tservice2-db'; do
	grep -qxF "$want" "$tmp/tree" || fail "no span: $(echo "$want" | tr '\t' ' ')"
done
jq -e '[.data[0].spans[] | select(.operationName == "GET /users/{id}") | .tags[] | select(.key == "request_id") | .value] | length == 2' \
	"$tmp/trace.json" >/dev/null || fail "the server spans lack request_id"
jq -e '[.data[0].spans[] | .tags[] | select(.key == "db.query.text") | .value] | any(test("\\?"))' "$tmp/trace.json" >/dev/null ||
	fail "no db.query.text with ? placeholders"
echo "the tree, request_id on both server spans, db.query.text with placeholders: as described"

step "4. Errors: the honeypot's server span is an error with an exception event"
curl -s -D "$tmp/h4" -o /dev/null http://localhost:8000/honeypot
tid=$(header Traceresponse "$tmp/h4" | cut -d- -f2)
has_error() {
	curl -s "$JAEGER/api/traces/$tid" >"$tmp/hp.json"
	jq -e '[.data[]?.spans[] | select(.operationName == "GET /honeypot")
		| select(any(.tags[]; .key == "otel.status_code" and .value == "ERROR"))
		| select(any(.logs[].fields[]; .key == "event" and .value == "exception"))] | length == 1' "$tmp/hp.json" >/dev/null
}
eventually 30 "the honeypot's error span" has_error
echo "GET /honeypot: status ERROR, exception event"

make --no-print-directory chaos-mysql-down
trap 'make --no-print-directory chaos-reset >/dev/null; rm -rf "$tmp"' EXIT
curl -s -D "$tmp/h5" -o /dev/null http://localhost:8000/users/1
tid=$(header Traceresponse "$tmp/h5" | cut -d- -f2)
db_errors() {
	curl -s "$JAEGER/api/traces/$tid" >"$tmp/db.json"
	jq -e '[.data[]?.spans[] | select(any(.tags[]; .key == "otel.status_code" and .value == "ERROR")) | .operationName]
		| (index("service2-db") != null) and (map(select(. == "GET /users/{id}")) | length >= 2)' "$tmp/db.json" >/dev/null
}
eventually 30 "MySQL down: service2-db and both server spans in error" db_errors
echo "MySQL down: service2-db and both server spans are errors"
make --no-print-directory chaos-reset
wait_200 10 http://localhost:8000/users/1 "a clean answer once MySQL is back"

step "5. From a latency panel to a trace: the slowest bucket's exemplar"
# What Grafana reads to draw the dots on a latency graph (Overview's "p99
# latency by service and route"): the exemplars of service1's OpenTelemetry
# histogram, whose trace_id opens the trace. The histograms leave every 5 s.
PROM=http://localhost:9090
slowest() {
	curl -s -G "$PROM/api/v1/query_exemplars" --data-urlencode 'query=otel_http_server_request_duration_seconds_bucket{job="service1"}' \
		--data-urlencode "start=$(($(date +%s) - 900))" --data-urlencode "end=$(($(date +%s) + 1))" >"$tmp/ex.json"
	jq -r '[.data[] | select(.exemplars | length > 0) | {le: (.seriesLabels.le | tonumber), e: (.exemplars | max_by(.value | tonumber))}]
		| max_by(.le) // empty | "\(.le) \(.e.value) \(.e.labels.trace_id)"' "$tmp/ex.json" >"$tmp/slowest"
	[[ -s $tmp/slowest ]]
}
eventually 30 "an exemplar on service1's latency histogram" slowest
read -r le value tid <"$tmp/slowest"
echo "slowest bucket with an exemplar: le=$le, a request of ${value} s, trace $tid"
in_jaeger() {
	curl -s "$JAEGER/api/traces/$tid" >"$tmp/ex-trace.json"
	jq -e '[.data[]?.spans[] | select(.operationName | startswith("GET ") or startswith("POST "))] | length > 0' "$tmp/ex-trace.json" >/dev/null
}
eventually 30 "the exemplar's trace in Jaeger" in_jaeger
echo "$JAEGER/trace/$tid: $(jq -r '[.data[0].spans[] | .operationName] | unique | join(", ")' "$tmp/ex-trace.json")"

printf '\ntracing walkthrough: all steps passed\n'
