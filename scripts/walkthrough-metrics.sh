#!/usr/bin/env bash
# Walkthrough 2 (docs/walkthroughs.md), metrics, as a script that checks what
# the walkthrough says you see: the load's summary, the series in
# statsd-exporter and Prometheus (the queries Grafana's panels run), and a
# broken dependency showing up and going away. It runs against whichever
# stack runs (make up or make local); make e2e runs it against make local.
#
#   make walkthrough-metrics
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/walkthrough-lib.sh
. scripts/walkthrough-lib.sh
PROM=http://localhost:9090
# promql QUERY: the result vector of an instant query, as JSON.
promql() { curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" | jq -c '.data.result'; }

# counts: service1's requests so far by route and 5xx or not, from Prometheus.
counts() {
	promql 'sum by (route) (http_server_request_duration_seconds_count{service="service1"})' |
		jq -c 'map({(.metric.route): (.value[1] | tonumber)}) | add // {}'
}
counts5xx() {
	promql 'sum by (route) (http_server_request_duration_seconds_count{service="service1",status=~"5.."})' |
		jq -c 'map({(.metric.route): (.value[1] | tonumber)}) | add // {}'
}
# What the load adds is measured as the difference of the counters before
# and after it, so that an experiment run a minute ago does not count.
wait_healthy
before=$(counts)
before5=$(counts5xx)

step "1. A load: every answer is what a healthy stack gives"
LOAD_RATE=50 LOAD_DURATION=10s make --no-print-directory load | tee "$tmp/load"
grep -q '^unexpected  0 answers' "$tmp/load" || fail "the load saw unexpected answers"
sent=$(awk '/^requests/ {print $2}' "$tmp/load")

step "2. The dashboards' queries: one series per route pattern, never per raw path"
if [[ $(scripts/stack.sh which) == compose ]] && docker compose ps --status running -q grafana 2>/dev/null | grep -q .; then
	curl -fsS http://localhost:3000/api/health | jq -e '.database == "ok"' >/dev/null || fail "Grafana is not healthy"
	curl -fsS 'http://localhost:3000/api/search?query=Service%20overview' | jq -e 'length >= 1' >/dev/null ||
		fail "no Service overview dashboard in Grafana"
	echo "Grafana healthy, Service overview provisioned"
else
	# make local, and the compose smoke (make compose-smoke), where Grafana
	# is never built.
	echo "(no Grafana runs here: it is AGPL and never built here; the panels' queries run against Prometheus instead)"
fi
# delta BEFORE AFTER: what each route gained, as JSON.
delta() { jq -nc --argjson a "$1" --argjson b "$2" '$b | with_entries(.value -= ($a[.key] // 0))'; }
scraped() { (($(delta "$before" "$(counts)" | jq 'map(.) | add // 0') >= sent)); }
eventually 30 "Prometheus has scraped the load's $sent requests (it scrapes every 5 s)" scraped
after=$(delta "$before" "$(counts)")
echo "requests by route label: $after"
echo "$after" | jq -e 'has("/users/{id}") and has("/honeypot") and (keys | all(test("^/users/[0-9]") | not))' >/dev/null ||
	fail "want one series per route pattern (/users/{id}, /honeypot), never a raw path"
after5=$(delta "$before5" "$(counts5xx)")
echo "5xx by route: $after5"
echo "$after5" | jq -e --argjson all "$after" '.["/honeypot"] == $all["/honeypot"] and ((.["/"] // 0) == 0) and ((.["/users/{id}"] // 0) == 0)' >/dev/null ||
	fail "want a 100 % 5xx ratio on /honeypot and none on / and /users/{id}"
echo "5xx ratio: /honeypot 100 %, / and /users/{id} 0 %"
q='sum by (route) (rate(http_server_request_duration_seconds_count{service="service1"}[1m]))'
promql "$q" | jq -r '.[] | "  \(.metric.route)\t\(.value[1]) req/s"'
promql 'histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{service="service1",route="/users/{id}"}[1m])))' |
	jq -e '.[0].value[1] | tonumber > 0' >/dev/null || fail "no p99 latency for /users/{id}"
echo "p99 of /users/{id}: from real histogram buckets"

step "3. Break something and watch it: MySQL away, 503s, then back by itself"
n503() { promql 'sum(http_server_request_duration_seconds_count{service="service2",status="503"})' | jq '(.[0].value[1] // "0") | tonumber'; }
base503=$(n503)
make --no-print-directory chaos-mysql-down
trap 'make --no-print-directory chaos-reset >/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 10); do status http://localhost:8000/users/1 >>"$tmp/codes"; echo >>"$tmp/codes"; done
grep -qx 503 "$tmp/codes" || fail "no 503 with MySQL away: $(sort "$tmp/codes" | uniq -c | tr '\n' ' ')"
seen503() { (($(n503) > base503)); }
eventually 30 "Prometheus sees service2's 503s" seen503
echo "service2's 503s are in Prometheus"
make --no-print-directory chaos-reset
wait_200 10 http://localhost:8000/users/1 "200 again once MySQL is back"
echo "back to 200 without a restart"

step "4. The raw series"
curl -s localhost:9090/api/v1/query --data-urlencode 'query=sum by (route, status) (rate(http_server_request_duration_seconds_count{service="service1"}[1m]))' >"$tmp/q4"
jq -r 'limit(5; .data.result[]) | "  \(.metric.route) \(.metric.status)\t\(.value[1])"' "$tmp/q4"
jq -e '.data.result | length > 0' "$tmp/q4" >/dev/null || fail "the walkthrough's query returns nothing"
curl -s localhost:9102/metrics | grep http_server >"$tmp/raw" || true
head -3 "$tmp/raw"
grep '^http_server_request_duration_seconds_count{' "$tmp/raw" >/dev/null || fail "statsd-exporter exposes no http_server series"

printf '\nmetrics walkthrough: all steps passed\n'
