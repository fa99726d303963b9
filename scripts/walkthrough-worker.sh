#!/usr/bin/env bash
# Walkthrough 6 (docs/walkthroughs.md), the worker and its queue, as a
# script that checks what the walkthrough says you see, in the logs, the
# metrics (Prometheus), the traces (Jaeger) and NATS's monitoring endpoint.
# It runs against whichever stack runs (make up or make local); make e2e
# runs it against make local.
#
#   make walkthrough-worker
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/walkthrough-lib.sh
. scripts/walkthrough-lib.sh
wait_healthy
PROM=http://localhost:9090
JAEGER=http://localhost:16686
NATSMON=http://localhost:8222
run=$RANDOM$RANDOM
# promql QUERY: the first value of an instant query (0 when empty).
promql() { curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" | jq -r '(.data.result[0].value[1] // "0")'; }
above() { awk -v min="$2" '{ exit !($1 + 0 > min) }' <<<"$1"; }
# create PREFIX N [PAUSE]: N users through service1, request IDs PREFIX-1..N.
create() {
	local i code
	for i in $(seq 1 "$2"); do
		code=$(status http://localhost:8000/users -X POST -H 'Content-Type: application/json' \
			-H "X-Request-ID: $1-$i" -d "{\"first_name\":\"w$i\",\"last_name\":\"walk\"}")
		[[ $code == 201 ]] || fail "POST /users ($1-$i): $code, want 201"
		sleep "${3:-0}"
	done
}
# welcomed PREFIX N: every one of the N requests has exactly one "welcome
# message sent" line in the workers' logs.
welcomed() {
	scripts/logs worker | grep -F "\"request_id\":\"$1-" | grep -F '"msg":"welcome message sent"' |
		jq -r .request_id | sort | uniq -c >"$tmp/welcomed" || true
	(($(wc -l <"$tmp/welcomed") == $2)) && ! awk '$1 != 1 { bad = 1 } END { exit !bad }' "$tmp/welcomed"
}
# pending: the consumer's tasks not yet delivered, from NATS's monitoring.
pending() {
	curl -fsS "$NATSMON/jsz?consumers=true" |
		jq '[.account_details[]?.stream_detail[]? | select(.name == "TASKS") | .consumer_detail[]? | select(.name == "welcome") | .num_pending] | add // 0'
}
trap 'make --no-print-directory chaos-reset >/dev/null; rm -rf "$tmp"' EXIT

step "1. One user, one welcome message: the task crosses the queue"
curl -s -D "$tmp/h1" -o /dev/null http://localhost:8000/users -X POST -H 'Content-Type: application/json' \
	-H "X-Request-ID: workshop-w1-$run-1" -d '{"first_name":"ada","last_name":"lovelace"}'
tid=$(header Traceresponse "$tmp/h1" | cut -d- -f2)
one() { welcomed "workshop-w1-$run" 1; }
eventually 30 "the worker's line for workshop-w1-$run-1" one
scripts/logs worker | grep -F "workshop-w1-$run-1" | jq -c '{msg, task_id, user_id, request_id, trace_id}'
in_trace() {
	curl -s "$JAEGER/api/traces/$tid" >"$tmp/trace.json"
	jq -e '[.data[]?.spans[] | select(.operationName == "tasks.welcome process")] | length == 1' "$tmp/trace.json" >/dev/null
}
eventually 30 "the worker's span in trace $tid" in_trace
jq -r '.data[0] as $t | $t.spans[] | "  \($t.processes[.processID].serviceName)\t\(.operationName)"' "$tmp/trace.json" | sort -u |
	column -t -s $'\t'
done_tasks() { above "$(promql 'sum(worker_task_duration_seconds_count{outcome="ack"})')" 0; }
eventually 30 "worker_task_duration_seconds_count{outcome=\"ack\"} above 0" done_tasks
echo "one trace from POST /users to the worker's task; the Worker dashboard counts it"

step "2. Kill the worker mid-task: make experiment NAME=worker-kill; every task is done once"
# 20 creates over about 10 s, while the experiment checks its steady state
# and kills the worker.
create "workshop-w2-$run" 20 0.5 &
creating=$!
make --no-print-directory experiment NAME=worker-kill | tee "$tmp/experiment"
grep -q 'verdict: HELD' "$tmp/experiment" || fail "the experiment's hypothesis did not hold"
wait $creating
twenty() { welcomed "workshop-w2-$run" 20; }
eventually 60 "20 welcome messages, one each, after the kill" twenty
echo "20 creates, 20 welcome messages, none twice (a killed worker's tasks come back after WORKER_ACK_WAIT)"

step "3. NATS away: the creates go on, the tasks wait in the outbox, and leave when it is back"
make --no-print-directory chaos-nats-down
create "workshop-w3-$run" 10
backlog() { above "$(promql 'max(outbox_backlog_tasks)')" 0; }
eventually 30 "outbox_backlog_tasks above 0" backlog
echo "10 creates answered 201; outbox backlog: $(promql 'max(outbox_backlog_tasks)'), oldest $(promql 'max(outbox_oldest_age_seconds)') s"
make --no-print-directory chaos-reset
ten() { welcomed "workshop-w3-$run" 10; }
eventually 60 "the 10 waiting tasks done after NATS returned" ten
drained() { ! above "$(promql 'max(outbox_backlog_tasks)')" 0; }
eventually 30 "the outbox drained" drained
echo "all 10 done; the outbox is empty again"

step "4. A slow worker: the queue grows (what autoscaling follows), and drains"
make --no-print-directory chaos-worker-slow
create "workshop-w4-$run" 40
grows() { above "$(pending)" 0; }
eventually 30 "tasks pending in the queue" grows
echo "queue (NATS monitoring, $NATSMON/jsz?consumers=true): $(pending) pending"
queued() { above "$(promql 'max(worker_queue_pending_tasks)')" 0; }
eventually 30 "worker_queue_pending_tasks above 0" queued
echo "worker_queue_pending_tasks: $(promql 'max(worker_queue_pending_tasks)')"
make --no-print-directory chaos-reset
forty() { welcomed "workshop-w4-$run" 40; }
eventually 90 "the 40 tasks done after chaos-reset" forty
empty() { [[ $(pending) == 0 ]]; }
eventually 30 "the queue empty" empty
echo "all 40 done; the queue is empty"

step "5. A poison task: dead-lettered once, with its reason, never retried"
before=$(promql 'sum(worker_tasks_dead_lettered_total{reason="poison"}) or vector(0)')
make --no-print-directory chaos-poison-task
deadlettered() { above "$(promql 'sum(worker_tasks_dead_lettered_total{reason="poison"}) or vector(0)')" "$before"; }
eventually 30 "worker_tasks_dead_lettered_total{reason=\"poison\"} up" deadlettered
go run ./cmd/tasks -nats "$(scripts/stack.sh nats-url)" dead | tee "$tmp/dead" | tail -3
grep -q 'reason="poison task: welcome task: no user_id" deliveries=1' "$tmp/dead" || fail "no dead letter with its reason"
echo "dead-lettered at its first delivery, with its reason, and counted"

printf '\nworker walkthrough: all steps passed\n'
