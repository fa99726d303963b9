#!/usr/bin/env bash
# Which stack runs, and the few things the Makefile and the walkthroughs do
# differently on each: compose (make up) or the native runner (make local,
# whose state is in .cache/local: see cmd/local/state.go).
#
#   scripts/stack.sh which              prints compose, local or none
#   scripts/stack.sh logs [-f] [NAME...] every program's log lines, or NAME's
#   scripts/stack.sh kill NAME [SIG]    SIGKILL (or SIG) NAME; its restart policy brings it back
#   scripts/stack.sh nats-url           NATS's URL on this host (for go run ./cmd/tasks)
#   scripts/stack.sh fill-spool         fill service2's spool filesystem
#   scripts/stack.sh free-spool         free it again
#   scripts/stack.sh ports-free         fail, naming each, when a host port make up publishes is taken
set -euo pipefail
cd "$(dirname "$0")/.."
LOCAL_STATE=${LOCAL_STATE:-.cache/local}

which_stack() {
	if docker compose ps --status running -q service1 2>/dev/null | grep . >/dev/null; then
		echo compose
	elif [[ -f $LOCAL_STATE/runner.pid ]] && kill -0 "$(cat "$LOCAL_STATE/runner.pid")" 2>/dev/null; then
		echo local
	else
		echo none
	fi
}

none() {
	echo "no stack is running: start one with make up (compose) or make local (no Docker)" >&2
	exit 1
}

# spool_ok: the native spool is a small filesystem of its own, never the
# machine's disk.
spool_ok() {
	local spool=$LOCAL_STATE/spool size
	mountpoint -q "$spool" 2>/dev/null || {
		echo "$spool is not a filesystem of its own, so filling it would fill this machine's disk." >&2
		echo "make local mounts a 16 MiB tmpfs there when it runs as root; otherwise mount one before make local:" >&2
		echo "  sudo mount -t tmpfs -o size=16m tmpfs $spool" >&2
		exit 1
	}
	size=$(df -k --output=size "$spool" | tail -1 | tr -d ' ')
	((size <= 262144)) || { echo "$spool is $((size / 1024)) MiB: not filling a filesystem over 256 MiB" >&2; exit 1; }
}

cmd=${1:-which}
shift || true
case $cmd in
which) which_stack ;;
logs)
	follow=
	if [[ ${1:-} == -f ]]; then follow=1; shift; fi
	case $(which_stack) in
	compose) exec docker compose logs --no-log-prefix ${follow:+-f} "$@" ;;
	local | none)
		# The native runner's files stay after it stops, as compose's logs do.
		files=()
		if (($#)); then
			for n in "$@"; do files+=("$LOCAL_STATE/logs/$n.log"); done
		else
			shopt -s nullglob
			files=("$LOCAL_STATE"/logs/*.log)
		fi
		((${#files[@]})) || none
		if [[ -n $follow ]]; then exec tail -q -n +1 -F "${files[@]}"; fi
		for f in "${files[@]}"; do [[ -f $f ]] && cat "$f"; done
		;;
	esac
	;;
nats-url)
	case $(which_stack) in
	compose) echo nats://127.0.0.1:4222 ;;
	local) cat "$LOCAL_STATE/nats-url" ;;
	none) none ;;
	esac
	;;
kill)
	name=${1:?kill NAME [SIGNAL]}
	sig=${2:-KILL}
	case $(which_stack) in
	compose)
		# Not docker kill: the engine counts it as a manual stop and
		# cancels the restart policy, so nothing would come back. The
		# signal comes from inside each container's PID namespace, from a
		# busybox beside it, as a crash would (init: true makes the program
		# a child of tini, which the kernel lets it signal).
		ids=$(docker compose ps -q "$name")
		[[ -n $ids ]] || { echo "no $name container is running" >&2; exit 1; }
		busybox=$(docker compose --profile chaos config diskfill | awk '$1 == "image:" {print $2; exit}')
		[[ -n $busybox ]] || { echo "no diskfill service (its busybox image sends the signal) in the compose file" >&2; exit 1; }
		for id in $ids; do
			init=$(docker inspect -f '{{.State.Pid}}' "$id")
			# The sender lives in the container's PID namespace. When the
			# program ends, tini (the namespace's init) exits with it and
			# the kernel kills what is left in the namespace
			# (pid_namespaces(7)): the sender too, and docker run says
			# 137. A sender that exited at once raced that, and lost it now
			# and then (137 in 1 send of 150 on a loaded machine), so it
			# stays until it is killed, and the container says whether the
			# signal landed: its init gone or replaced, within 10 s.
			rc=0
			docker run --rm --pid "container:$id" --network none "$busybox" sh -c "kill -$sig \$(pidof app) && exec sleep 10" || rc=$?
			if ((rc != 0 && rc != 137)); then
				echo "SIG$sig to $name ($id): the sender exited $rc" >&2
				exit 1
			fi
			for _ in $(seq 50); do
				[[ $(docker inspect -f '{{.State.Pid}}' "$id" 2>/dev/null) != "$init" ]] && continue 2
				sleep 0.2
			done
			echo "SIG$sig to $name ($id): its init is still pid $init 10 s later: the program did not end" >&2
			exit 1
		done
		echo "sent SIG$sig to $name ($(wc -w <<<"$ids") container(s)); its restart policy brings it back (docker compose ps shows it)"
		;;
	local)
		read -r pid _ <"$LOCAL_STATE/pids/$name"
		kill "-$sig" "$pid"
		echo "sent SIG$sig to $name (pid $pid); make local restarts it (its terminal and make logs say so)"
		;;
	none) none ;;
	esac
	;;
fill-spool)
	case $(which_stack) in
	compose) exec docker compose --profile chaos run --rm diskfill ;;
	local)
		spool_ok
		dd if=/dev/zero of="$LOCAL_STATE/spool/fill" bs=1M status=none 2>/dev/null || true
		df -h "$LOCAL_STATE/spool"
		;;
	none) none ;;
	esac
	;;
free-spool)
	case $(which_stack) in
	compose) exec docker compose --profile chaos run --rm diskfill "rm -f /spool/fill; df -h /spool" ;;
	local) rm -f "$LOCAL_STATE/spool/fill" && echo "spool freed" ;;
	none) ;;
	esac
	;;
ports-free)
	# Before make up starts anything: every host port it publishes must be
	# free (when the compose stack already runs, they are its own).
	if docker compose ps -q 2>/dev/null | grep -q .; then exit 0; fi
	taken=()
	while read -r ip port; do
		if (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; then taken+=("$ip:$port"); fi
	done < <(docker compose config | awk '/host_ip:/ {ip=$2} /published:/ {gsub(/"/, "", $2); print (ip == "" ? "0.0.0.0" : ip), $2; ip=""}' | sort -u)
	if ((${#taken[@]})); then
		echo "make up: these host ports are taken: ${taken[*]}" >&2
		echo "Stop what listens there first (make local's stack binds the same ports: stop it with Ctrl-C)." >&2
		exit 1
	fi
	;;
*)
	echo "usage: scripts/stack.sh which|logs [-f] [NAME...]|kill NAME|fill-spool|free-spool|ports-free" >&2
	exit 2
	;;
esac
