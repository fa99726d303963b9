#!/usr/bin/env bash
# Walkthrough 4 (docs/walkthroughs.md), chaos, as a script: the game day
# (make gameday: every experiment of deploy/chaos, each with its steady
# state, fault, hypothesis and rollback), checked to end with every verdict
# HELD, then the rate limit. It runs against whichever stack runs (make up
# or make local); make e2e runs it against make local, with
# CHAOS_FLAGS="-scale 0.25" (shorter faults, same code).
#
#   make walkthrough-chaos
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/walkthrough-lib.sh
. scripts/walkthrough-lib.sh
trap 'make --no-print-directory chaos-reset >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
S1=http://localhost:8000

step "1-6. The game day: make gameday"
make --no-print-directory gameday | tee "$tmp/gameday" || fail "make gameday: a hypothesis was disproved (its verdict and journal above)"
sed -n '/^game day:/,$p' "$tmp/gameday" >"$tmp/table"
experiments=$(find deploy/chaos -name '*.yaml' | wc -l)
held=$(grep -cE '^[a-z0-9-]+ +.* HELD ' "$tmp/table" || true)
((held == experiments)) || fail "$held of $experiments experiments HELD in the table"
echo "all $experiments experiments held"

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
