#!/usr/bin/env bash
# make demo: build rcbridge and rcsim, run rcbridge with the embedded NATS
# bus and config.demo.toml, start two simulated PLCs that reverse-connect to
# it, stream the bus messages until Ctrl-C, and set a set point once on the
# way. Every process started here is stopped on exit.
#
# Environment:
#   GO            the go command (default: go)
#   DEMO_SECONDS  stop after this many seconds instead of waiting for Ctrl-C
#   RCBRIDGE_LISTENER_ADDRESS, RCBRIDGE_HTTP_ADDRESS,
#   RCBRIDGE_BUS_EMBEDDED_ADDRESS  move the demo's ports (config overrides)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
go=${GO:-go}
config="$repo/config.demo.toml"
listen=${RCBRIDGE_LISTENER_ADDRESS:-127.0.0.1:4844}
work=$(mktemp -d "${TMPDIR:-/tmp}/rcbridge-demo.XXXXXX")
pids=()

if [[ -t 2 ]]; then
	say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
else
	say() { printf '== %s\n' "$*" >&2; }
fi

cleanup() {
	trap - EXIT INT TERM
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	say "stopped: ${pids[*]}"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building rcbridge and rcsim"
(cd "$repo" && "$go" build -o "$work/bin/" ./cmd/rcbridge ./cmd/rcsim)

cd "$work"
say "starting rcbridge (embedded NATS, $config)"
"$work/bin/rcbridge" -config "$config" 2>rcbridge.log &
pids+=($!)
for _ in $(seq 100); do
	grep -q 'rcbridge running' rcbridge.log && break
	if ! kill -0 "${pids[0]}" 2>/dev/null; then
		cat rcbridge.log >&2
		say "rcbridge did not start"
		exit 1
	fi
	sleep 0.1
done
grep -q 'rcbridge running' rcbridge.log || { cat rcbridge.log >&2; say "rcbridge did not start"; exit 1; }

for line in line1 line2; do
	say "starting rcsim urn:rcbridge:demo:$line -> opc.tcp://$listen"
	"$work/bin/rcsim" -connect "opc.tcp://$listen" -server-uri "urn:rcbridge:demo:$line" 2>"rcsim-$line.log" &
	pids+=($!)
done

say "bus messages (Ctrl-C to stop):"
"$work/bin/rcbridge" tail -config "$config" &
tail_pid=$!
pids+=("$tail_pid")

sleep 3
say 'setting line1 set point: rcbridge request rcbridge.line1.setpoint.set {"id":"demo-1","value":42.5}'
if ! "$work/bin/rcbridge" request -config "$config" -timeout 5s rcbridge.line1.setpoint.set '{"id":"demo-1","value":42.5}'; then
	say "no reply to the set point command; the end of rcbridge's log:"
	tail -n 5 rcbridge.log >&2
fi

if [[ -n ${DEMO_SECONDS:-} ]]; then
	sleep "$DEMO_SECONDS"
else
	wait "$tail_pid" || true
fi
