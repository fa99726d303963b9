#!/usr/bin/env bash
# Walkthrough 4 (docs/walkthroughs.md), chaos, as a script: each experiment's
# make target, then a check of what the walkthrough says you see, then make
# chaos-reset and a check that the stack recovers by itself. It runs against
# whichever stack runs (make up or make local); make e2e runs it against
# make local.
#
#   make walkthrough-chaos
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/walkthrough-lib.sh
. scripts/walkthrough-lib.sh
trap 'make --no-print-directory chaos-reset >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
S1=http://localhost:8000
S2=http://localhost:8001

# call URL: one request; prints "STATUS SECONDS" and keeps the body and
# headers in $tmp/body and $tmp/headers.
call() { curl -s -D "$tmp/headers" -o "$tmp/body" -w '%{http_code} %{time_total}\n' "$1" || true; }
reset() {
	make --no-print-directory chaos-reset
	wait_200 30 $S1/ "$1: GET / answers 200 again"
	echo "recovered by itself after make chaos-reset"
}

step "0. A healthy stack to start from"
reset "before the experiments"

step "1. Latency: make chaos-latency (2 s between service1 and service2)"
make --no-print-directory chaos-latency
read -r code took < <(call $S1/)
echo "GET / -> $code after ${took}s: $(cat "$tmp/body")"
[[ $code == 504 ]] && grep -q '"service2 timed out"' "$tmp/body" || fail "want 504 \"service2 timed out\""
awk -v t="$took" 'BEGIN { exit !(t >= 2.5 && t < 4.5) }' || fail "the 504 came after ${took}s, not about 3 s (the whole budget)"
opened() {
	read -r code took < <(call $S1/)
	[[ $code == 503 ]] && grep -q 'circuit breaker open' "$tmp/body" && [[ -n $(header Retry-After "$tmp/headers") ]]
}
eventually 20 "the breaker opens" opened
opened || fail "the breaker did not stay open"
echo "then 503 \"$(jq -r .error "$tmp/body")\" in ${took}s, Retry-After: $(header Retry-After "$tmp/headers")"
awk -v t="$took" 'BEGIN { exit !(t < 0.5) }' || fail "an open breaker answered in ${took}s, not at once"
reset "latency"

step "2. service2 down: make chaos-service2-down"
make --no-print-directory chaos-service2-down
read -r code took < <(call $S1/)
echo "GET / -> $code in ${took}s: $(cat "$tmp/body")"
[[ $code == 503 ]] && grep -q '"service2 unavailable"' "$tmp/body" || fail "want 503 \"service2 unavailable\""
awk -v t="$took" 'BEGIN { exit !(t < 1) }' || fail "service2 down took ${took}s to fail, not milliseconds"
eventually 20 "the breaker opens" opened
echo "then 503 \"$(jq -r .error "$tmp/body")\""
[[ $(status $S1/readyz) == 503 && $(status $S1/healthz) == 200 ]] || fail "want /readyz 503 and /healthz 200 while the breaker is open"
echo "/readyz 503, /healthz 200"
reset "service2 down"
[[ $(status $S1/readyz) == 200 ]] || fail "/readyz not 200 after recovery"

step "3. MySQL down: make chaos-mysql-down"
make --no-print-directory chaos-mysql-down
read -r code took < <(call $S1/users/1)
echo "GET /users/1 -> $code in ${took}s: $(cat "$tmp/body")"
[[ $code == 503 ]] && grep -q '"service2: database unavailable"' "$tmp/body" || fail "want 503 \"service2: database unavailable\""
[[ $(status $S2/readyz) == 503 ]] || fail "service2's /readyz is not 503 with MySQL away"
echo "service2 /readyz 503"
sleep 0.5
scripts/logs service2 | grep -F '"query failed"' | grep -F 'database unavailable' >/dev/null || fail "no \"query failed\" line with database unavailable"
echo "service2 logs \"query failed\" ... database unavailable"
reset "MySQL down"

step "4. Connections reset: make chaos-reset-peer"
make --no-print-directory chaos-reset-peer
read -r code took < <(call $S1/users/1)
echo "GET /users/1 -> $code in ${took}s"
[[ $code == 503 ]] || fail "want 503 with every MySQL connection reset"
awk -v t="$took" 'BEGIN { exit !(t < 2) }' || fail "took ${took}s, not a fast 503"
reset "connections reset"

step "5. Kill service2: make chaos-kill"
starts_before=$(scripts/logs service2 | grep -c '"msg":"starting"' || true)
make --no-print-directory chaos-kill
sleep 0.3
echo "GET / while service2 is away -> $(status $S1/)"
s2ready() { [[ $(status $S2/readyz) == 200 ]]; }
eventually 60 "service2 is restarted and ready" s2ready
restarted() { (($(scripts/logs service2 | grep -c '"msg":"starting"' || true) > starts_before)); }
eventually 10 "service2's log starts again with \"starting\"" restarted
echo "service2 restarted: its log starts again with \"starting\""
if [[ $(scripts/stack.sh which) == local ]]; then
	scripts/logs local | grep -E 'service2 (exited|restarted)' | tail -2
fi
wait_200 30 $S1/ "GET / answers 200 again"

step "6. Disk full: make chaos-disk-full"
make --no-print-directory chaos-disk-full
read -r code took < <(call $S2/users/export)
echo "GET service2 /users/export -> $code: $(cat "$tmp/body")"
[[ $code == 507 ]] && grep -q 'no space left on the spool volume' "$tmp/body" && grep -q '"request_id"' "$tmp/body" ||
	fail "want 507 \"export failed: no space left on the spool volume\" with the request ID"
sleep 0.5
scripts/logs service2 | grep -F '"export spool full"' >/dev/null || fail "no \"export spool full\" line"
[[ $(status $S1/) == 200 ]] || fail "GET / stopped working with the spool full"
echo "\"export spool full\" logged; everything else keeps working"
make --no-print-directory chaos-reset
[[ $(status $S2/users/export) == 200 ]] || fail "the export does not work again after make chaos-reset"
echo "export works again"

step "7. Too many requests: LOAD_RATE=150 make load (over the 100/s per-client limit)"
LOAD_RATE=150 LOAD_DURATION=3s make --no-print-directory load | tee "$tmp/load"
grep -qE '^statuses .*429×[0-9]+' "$tmp/load" || fail "no 429 at 150 requests/s"
# A burst past the limit: the refusals carry Retry-After: 1 and X-RateLimit-*.
urls=()
for _ in $(seq 150); do urls+=(-o /dev/null "$S1/"); done
curl -s --no-progress-meter -Z --parallel-max 30 -w '%{http_code} %header{retry-after} %header{x-ratelimit-limit}\n' "${urls[@]}" >"$tmp/burst" || true
grep -qE '^429 1 [0-9]+$' "$tmp/burst" || fail "no 429 with Retry-After: 1 and X-RateLimit-Limit in a burst: $(sort "$tmp/burst" | uniq -c | tr '\n' ' ')"
echo "burst of 150: $(cut -d' ' -f1 "$tmp/burst" | sort | uniq -c | tr '\n' ' ')"

step "8. Retry storm? (the retry budget; checked in make e2e by TestChaosRetryBudgetHolds)"
echo "see the Resilience dashboard's Retries as a share of calls during experiment 2 or 3"

printf '\nchaos walkthrough: all steps passed\n'
