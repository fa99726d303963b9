# shellcheck shell=bash
# Helpers of the walkthrough scripts (sourced, not run).

step() { printf '\n== %s\n' "$*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# header NAME FILE: the value of a response header in a curl -D dump.
header() { tr -d '\r' <"$2" | awk -v h="$(echo "$1" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1)==h {print $2}'; }
# status URL [curl args...]: the HTTP status of one request (000 when none).
status() {
	local url=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true
}
# eventually SECONDS DESCRIPTION COMMAND...: run COMMAND every 0.2 s until it
# succeeds, failing after SECONDS.
eventually() {
	local limit=$1 what=$2 end
	shift 2
	end=$((SECONDS + limit))
	until "$@"; do
		((SECONDS < end)) || fail "$what: not within ${limit}s"
		sleep 0.2
	done
}
# wait_200 SECONDS URL DESCRIPTION: wait until URL answers 200.
wait_200() {
	local url=$2
	_is200() { [[ $(status "$url") == 200 ]]; }
	eventually "$1" "$3" _is200
}
# wait_healthy: wait until service1 answers GET / with 200 (after an
# experiment, its breaker may still be open for up to 5 s).
wait_healthy() { wait_200 30 http://localhost:8000/ "a healthy stack (GET / 200)"; }
command -v jq >/dev/null || fail "the walkthrough scripts need jq (apt-get install jq, brew install jq)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
