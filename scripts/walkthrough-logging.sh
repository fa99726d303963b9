#!/usr/bin/env bash
# Walkthrough 1 (docs/walkthroughs.md), logs and request IDs, as a script
# that checks what the walkthrough says you see. It runs the walkthrough's
# own commands against whichever stack runs (make up or make local); make
# e2e runs it against make local. It exits non-zero at the first
# expectation that does not hold.
#
#   make walkthrough-logging
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/walkthrough-lib.sh
. scripts/walkthrough-lib.sh
wait_healthy

step "1. No X-Request-ID sent: service1 generates one and returns it"
curl -sS -D "$tmp/h1" -o "$tmp/b1" "http://localhost:8000/"
cat "$tmp/b1"
id=$(header X-Request-ID "$tmp/h1")
echo "X-Request-ID: $id"
[[ $id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] || fail "no generated UUID in X-Request-ID"

step "2. Your own ID: accepted, returned, and forwarded to service2"
rid="workshop-$RANDOM$RANDOM"
curl -sS -D "$tmp/h2" -o "$tmp/b2" -H "X-Request-ID: $rid" "http://localhost:8000/users/1"
cat "$tmp/b2"
[[ $(header X-Request-ID "$tmp/h2") == "$rid" ]] || fail "X-Request-ID not echoed"

step "3. One grep finds that request in both services' logs"
sleep 0.5 # let the log lines land
scripts/logs service1 service2 | grep -F "\"request_id\":\"$rid\"" >"$tmp/lines" || true
cut -c1-220 "$tmp/lines"
grep -q '"service":"service1"' "$tmp/lines" || fail "no service1 line with $rid"
grep -q '"service":"service2"' "$tmp/lines" || fail "no service2 line with $rid"

step "4. An error is JSON and carries the ID too"
curl -sS -D "$tmp/h4" -o "$tmp/b4" -H "X-Request-ID: $rid-404" "http://localhost:8000/users/424242"
cat "$tmp/b4"
grep -q "\"request_id\":\"$rid-404\"" "$tmp/b4" || fail "404 body lacks the request ID"

step "5. A hostile ID is replaced, and the rejection is logged, escaped"
curl -sS -D "$tmp/h5" -o /dev/null -H 'X-Request-ID: {"level":"ERROR","msg":"forged"}' "http://localhost:8000/"
new=$(header X-Request-ID "$tmp/h5")
echo "replaced by: $new"
[[ $new =~ ^[0-9a-f-]{36}$ ]] || fail "hostile ID not replaced"
sleep 0.5
scripts/logs service1 service2 | grep -F "$new" | grep -F '"rejected inbound request id"' >"$tmp/l5" || true
cut -c1-300 "$tmp/l5"
[[ -s $tmp/l5 ]] || fail "no rejection line"

step "6. The honeypot panics: a 500 with the ID, the stack in the log, and service1 keeps serving"
curl -sS -D "$tmp/h6" -o "$tmp/b6" "http://localhost:8000/honeypot"
cat "$tmp/b6"
pid=$(header X-Request-ID "$tmp/h6")
grep -q '"error":"internal error"' "$tmp/b6" || fail "honeypot did not answer the JSON 500"
sleep 0.5
scripts/logs service1 service2 | grep -F "$pid" | grep -F '"panic recovered"' >"$tmp/l6" || true
cut -c1-200 "$tmp/l6"
[[ -s $tmp/l6 ]] || fail "no panic line"
curl -fsS -o /dev/null "http://localhost:8000/healthz" || fail "service1 stopped serving after the panic"
echo "service1 still serving"

printf '\nlogging walkthrough: all steps passed\n'
