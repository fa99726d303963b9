#!/usr/bin/env bash
# The logging walkthrough (docs/walkthroughs.md), as a script that checks what it shows.
#
#   make walkthrough-logging                       # against `make up` (compose)
#   BASE=http://127.0.0.1:8000 LOGS='cat stack.log' scripts/walkthrough-logging.sh
#
# BASE is service1's URL; LOGS is a command printing both services' log lines.
# The e2e tests run it against the native stack. It exits non-zero at the
# first expectation that does not hold.
set -euo pipefail

BASE=${BASE:-http://localhost:8000}
LOGS=${LOGS:-docker compose logs --no-log-prefix service1 service2}

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# header NAME FILE: the value of a response header in a curl -D dump.
header() { tr -d '\r' <"$2" | awk -v h="$(echo "$1" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1)==h {print $2}'; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "1. No X-Request-ID sent: service1 generates one and returns it"
curl -sS -D "$tmp/h1" -o "$tmp/b1" "$BASE/"
cat "$tmp/b1"
id=$(header X-Request-ID "$tmp/h1")
echo "X-Request-ID: $id"
[[ $id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] || fail "no generated UUID in X-Request-ID"

step "2. Your own ID: accepted, returned, and forwarded to service2"
rid="workshop-$RANDOM$RANDOM"
curl -sS -D "$tmp/h2" -o "$tmp/b2" -H "X-Request-ID: $rid" "$BASE/users/1"
cat "$tmp/b2"
[[ $(header X-Request-ID "$tmp/h2") == "$rid" ]] || fail "X-Request-ID not echoed"

step "3. One grep finds that request in both services' logs"
sleep 0.5 # let the log lines land
$LOGS | grep -F "\"request_id\":\"$rid\"" | tee "$tmp/lines" | cut -c1-220
grep -q '"service":"service1"' "$tmp/lines" || fail "no service1 line with $rid"
grep -q '"service":"service2"' "$tmp/lines" || fail "no service2 line with $rid"

step "4. An error is JSON and carries the ID too"
curl -sS -D "$tmp/h4" -o "$tmp/b4" -H "X-Request-ID: $rid-404" "$BASE/users/424242"
cat "$tmp/b4"
grep -q "\"request_id\":\"$rid-404\"" "$tmp/b4" || fail "404 body lacks the request ID"

step "5. A hostile ID is replaced, and the rejection is logged, escaped"
curl -sS -D "$tmp/h5" -o /dev/null -H 'X-Request-ID: {"level":"ERROR","msg":"forged"}' "$BASE/"
new=$(header X-Request-ID "$tmp/h5")
echo "replaced by: $new"
[[ $new =~ ^[0-9a-f-]{36}$ ]] || fail "hostile ID not replaced"
sleep 0.5
$LOGS | grep -F "$new" | grep -F '"rejected inbound request id"' | cut -c1-300 || fail "no rejection line"

step "6. The honeypot panics: a 500 with the ID, the stack in the log, and service1 keeps serving"
curl -sS -D "$tmp/h6" -o "$tmp/b6" "$BASE/honeypot"
cat "$tmp/b6"
pid=$(header X-Request-ID "$tmp/h6")
grep -q '"error":"internal error"' "$tmp/b6" || fail "honeypot did not answer the JSON 500"
sleep 0.5
$LOGS | grep -F "$pid" | grep -F '"panic recovered"' | cut -c1-200 || fail "no panic line"
curl -fsS -o /dev/null "$BASE/healthz" || fail "service1 stopped serving after the panic"
echo "service1 still serving"

printf '\nlogging walkthrough: all steps passed\n'
