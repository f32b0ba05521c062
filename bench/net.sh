#!/usr/bin/env bash
# The "Network" benchmark of bench/README.md: the same streaming load against `veil serve`
# and through `veil devnet` (gateway -> proxy -> worker, RA-TLS and end-to-end sealing on the
# way), one worker with the same thread count as the server, so the difference is the
# network path. Then the proxy's CPU time per 1000 relayed tokens, and the proxy's memory per
# idle gateway connection.
#
#   bash bench/net.sh [MODEL.gguf] [THREADS]
#
# MODEL defaults to the bundled models/stories260K.gguf (tiny: its TTFT is mostly overhead,
# which is what the hop adds to). Environment: VEIL (default build/veil), CONC (default 1,8),
# REQUESTS (per level, default 64), MAX_TOKENS (default 64), IDLE (idle gateways, default 16).
# Prints serve_load.mjs JSON lines (serve, then devnet) and the proxy figures.
set -euo pipefail

MODEL=${1:-models/stories260K.gguf}
THREADS=${2:-1}
VEIL=${VEIL:-build/veil}
HERE=$(cd "$(dirname "$0")" && pwd)
CONC=${CONC:-1,8}
REQUESTS=${REQUESTS:-64}
MAX_TOKENS=${MAX_TOKENS:-64}
IDLE=${IDLE:-16}
EOS=$("$VEIL" info "$MODEL" | awk '$1 == "tokenizer.ggml.eos_token_id" { print $3; exit }')

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# await_ready FILE: the URL or text after "ready: " once the process printed it (60 s at most)
await_ready() {
    for _ in $(seq 600); do
        if grep -q '^ready: ' "$1"; then sed -n 's/^ready: //p' "$1" | head -n 1; return 0; fi
        sleep 0.1 # polling a log file, bounded
    done
    echo "bench/net.sh: no ready line in $1" >&2
    return 1
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

load() {
    node "$HERE/serve_load.mjs" --url "$1" --concurrency "$CONC" --requests "$REQUESTS" \
        --max-tokens "$MAX_TOKENS" --ban "$EOS" 2>/dev/null
}

"$VEIL" serve "$MODEL" --listen 127.0.0.1:0 --threads "$THREADS" >"$tmp/serve.out" 2>/dev/null &
pids+=($!)
SERVE_URL=$(await_ready "$tmp/serve.out")
echo "# veil serve ($SERVE_URL)"
load "$SERVE_URL"
kill -TERM "${pids[0]}"

mkdir -p "$tmp/logs"
"$VEIL" devnet --listen 127.0.0.1:0 --model "$MODEL" --workers 1 --threads "$THREADS" \
    --dir "$tmp/state" --log-dir "$tmp/logs" >"$tmp/devnet.out" 2>/dev/null &
pids+=($!)
NET_URL=$(await_ready "$tmp/devnet.out")
PROXY=$(sed -n 's/^devnet: proxy pid //p' "$tmp/devnet.out")
CLIENTS=$(sed -n 's/^devnet: proxy workers \S* clients \(\S*\) .*/\1/p' "$tmp/devnet.out")
echo "# veil devnet ($NET_URL), proxy pid $PROXY"
t0=$(cpu_ticks "$PROXY")
out=$(load "$NET_URL")
t1=$(cpu_ticks "$PROXY")
echo "$out"
tokens=$(echo "$out" | sed -n 's/.*"completion_tokens":\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s }')
hz=$(getconf CLK_TCK)
awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$tokens" 'BEGIN {
    printf "proxy CPU: %.3f s for %d relayed tokens = %.2f ms per 1000 tokens\n", t / hz, n, t / hz * 1000 / n * 1000 }'

# idle connections: IDLE more gateways, each holding one RA-TLS connection to the proxy
rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$PROXY/status")
for i in $(seq "$IDLE"); do
    "$VEIL" client --proxy "$CLIENTS" --listen 127.0.0.1:0 --wait-workers 1 \
        --sim-key "$tmp/state/platform.key" --trust-sim-keys "$tmp/state/trusted-sim-keys.txt" \
        --allow-measurements "$tmp/state/measurements.txt" >"$tmp/idle$i.out" 2>/dev/null &
    pids+=($!)
done
for i in $(seq "$IDLE"); do await_ready "$tmp/idle$i.out" >/dev/null; done
rss1=$(awk '/VmRSS/ { print $2 }' "/proc/$PROXY/status")
fds=$(ls "/proc/$PROXY/fd" | wc -l)
awk -v a="$rss0" -v b="$rss1" -v n="$IDLE" -v fds="$fds" -v lim="$(ulimit -n)" 'BEGIN {
    per = (b - a) / n
    printf "proxy RSS: %d KiB -> %d KiB with %d more idle gateways = %.1f KiB each; %d fds open, limit %s\n", a, b, n, per, fds, lim }'
