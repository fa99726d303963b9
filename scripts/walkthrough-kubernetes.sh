#!/usr/bin/env bash
# Walkthrough 7 (docs/walkthroughs.md), Kubernetes and autoscaling, as a
# script that checks what the walkthrough says you see.
#
# Steps 1 to 3 run against whichever stack runs (make up or make local;
# make e2e runs them against make local): the manifests render, and the two
# signals KEDA scales on, read from the running stack as KEDA reads them.
# Step 4 runs on the local cluster of make k8s-up (kind, which needs
# Docker) when there is one, and says so when there is not.
#
#   make walkthrough-kubernetes
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/walkthrough-lib.sh
. scripts/walkthrough-lib.sh
: "${KUSTOMIZE_BIN:?run it with make walkthrough-kubernetes, which installs kustomize}"
wait_healthy
PROM=http://localhost:9090
NATSMON=http://localhost:8222
SCALING=deploy/kubernetes/base/autoscaling.yaml
run=$RANDOM$RANDOM
promql() { curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" | jq -r '(.data.result[0].value[1] // "0")'; }
# field NAME KEY: a trigger setting of ScaledObject NAME in autoscaling.yaml.
field() {
	awk -v so="$1" -v key="$2" '
		/^kind: ScaledObject/ { in_so = 0 }
		/^  name: / && prev ~ /^metadata:/ { in_so = ($2 == so) }
		in_so && $1 == key":" { sub(/^[^:]*: */, ""); sub(/ +#.*$/, ""); gsub(/^"|"$/, ""); print; exit }
		{ prev = $0 }' "$SCALING"
}
# lag: the consumer's lag as KEDA's nats-jetstream scaler computes it:
# num_pending + num_ack_pending of /jsz?acc=$G&consumers=true&config=true.
lag() {
	# shellcheck disable=SC2016 # $G is NATS's global account, not a variable
	curl -fsS -G "$NATSMON/jsz" --data-urlencode 'acc=$G' -d consumers=true -d config=true |
		jq '[.account_details[]? | select(.name == "$G") | .stream_detail[]? | select(.name == "TASKS") |
			.consumer_detail[]? | select(.name == "welcome") | .num_pending + .num_ack_pending] | add // 0'
}
ceil_div() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf "%d\n", (r == int(r)) ? r : int(r) + 1 }'; }
trap 'make --no-print-directory chaos-reset >/dev/null; rm -rf "$tmp"' EXIT

step "1. The manifests render: kustomize build deploy/kubernetes/overlays/local"
"$KUSTOMIZE_BIN" build --load-restrictor=LoadRestrictionsNone deploy/kubernetes/overlays/local >"$tmp/all.yaml"
grep '^kind:' "$tmp/all.yaml" | sort | uniq -c
grep -q '^kind: HorizontalPodAutoscaler' "$tmp/all.yaml" && fail "an HPA in the manifests: KEDA makes them"
(($(grep -c '^kind: ScaledObject' "$tmp/all.yaml") == 3)) || fail "want 3 ScaledObjects (service1, service2, worker)"
echo "(make k8s-validate has a real kube-apiserver accept every one of these)"

step "2. service1 scales on requests a second per replica: its ScaledObject's query, under load"
query=$(field service1 query)
threshold=$(field service1 threshold)
[[ -n $query && -n $threshold ]] || fail "no query or threshold for service1 in $SCALING"
echo "query:     $query"
echo "threshold: $threshold a replica (AverageValue: the HPA divides the query's total by the replicas)"
# The query's window is 1 minute: a load a little longer fills it.
make --no-print-directory load LOAD_RATE=60 LOAD_DURATION=65s | tail -n 4
near60() {
	v=$(promql "$query")
	awk -v v="$v" 'BEGIN { exit !(v >= 51 && v <= 69) }'
}
eventually 15 "the query at 60 requests/s (within 15 %)" near60
printf 'the query returns %.1f requests/s; the HPA asks for ceil(%.1f / %s) = %s replica(s), then at least minReplicaCount (%s)\n' \
	"$v" "$v" "$threshold" "$(ceil_div "$v" "$threshold")" "$(field service1 minReplicaCount)"

step "3. The worker scales on its queue's lag: NATS's monitoring endpoint, as KEDA reads it"
lag_threshold=$(field worker lagThreshold)
echo "lagThreshold: $lag_threshold tasks a worker"
make --no-print-directory chaos-worker-slow >/dev/null
for i in $(seq 1 40); do
	code=$(status http://localhost:8000/users -X POST -H 'Content-Type: application/json' \
		-H "X-Request-ID: workshop-k8s-$run-$i" -d "{\"first_name\":\"k$i\",\"last_name\":\"scale\"}")
	[[ $code == 201 ]] || fail "POST /users: $code, want 201"
done
grown() { (($(lag) >= 20)); }
eventually 30 "a lag of 20 tasks or more" grown
# The dashboard's queue panel: pending + unacknowledged, sampled by the
# worker every 5 s and scraped every 5 s: let it catch up.
agree() {
	l=$(lag)
	d=$(promql 'sum(max by (consumer) (worker_queue_pending_tasks)) + sum(max by (consumer) (worker_queue_ack_pending_tasks))')
	awk -v a="$l" -v b="$d" 'BEGIN { exit !(a - b <= 8 && b - a <= 8) }'
}
eventually 30 "NATS's lag and the worker dashboard's within 8 tasks" agree
echo "NATS says $l tasks behind (pending + unacknowledged); the Worker dashboard's queue panel says $d"
echo "the HPA asks for ceil($l / $lag_threshold) = $(ceil_div "$l" "$lag_threshold") worker(s) (between minReplicaCount $(field worker minReplicaCount) and maxReplicaCount $(field worker maxReplicaCount))"
make --no-print-directory chaos-reset >/dev/null
drained() { (($(lag) == 0)); }
eventually 90 "the queue drained after make chaos-reset" drained
echo "after make chaos-reset the queue is back to 0: KEDA would scale the workers down after the stabilization window"

step "4. On a cluster (make k8s-up)"
if command -v kubectl >/dev/null && kubectl --context kind-failready -n failready get scaledobject >"$tmp/so" 2>/dev/null; then
	cat "$tmp/so"
	kubectl --context kind-failready -n failready get hpa
	echo "now follow docs/walkthroughs.md, walkthrough 7, steps 5 to 7, on the cluster"
else
	echo "no cluster here (make k8s-up makes one with kind, which needs Docker): steps 4 to 7 of the walkthrough need one"
fi

echo
echo "walkthrough: all steps passed"
