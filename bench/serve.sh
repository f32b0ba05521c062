#!/usr/bin/env bash
# The "Serving" benchmark of bench/README.md: starts `veil serve MODEL` on a free loopback
# port, runs bench/serve_load.mjs at each concurrency level (one JSON line per level on
# stdout, a markdown table on stderr), reads the server's peak RSS and stops it with SIGTERM,
# which must exit 0.
#
#   bash bench/serve.sh MODEL.gguf [THREADS]
#
# THREADS defaults to veil's own default (one per CPU). Environment: VEIL (binary, default
# build/veil), CONC (levels, default 1,4,16,64), MAX_TOKENS (default 64), REQUESTS (per level;
# default 2 x concurrency, at least 4), SERVE_ARGS (extra `veil serve` flags), LOAD_ARGS (extra
# serve_load.mjs flags).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: bash bench/serve.sh MODEL.gguf [THREADS]" >&2
    exit 2
fi
MODEL=$1
THREADS=${2:-}
VEIL=${VEIL:-build/veil}
HERE=$(cd "$(dirname "$0")" && pwd)
CONC=${CONC:-1,4,16,64}
MAX_TOKENS=${MAX_TOKENS:-64}
REQUESTS=${REQUESTS:-0}

# Ban EOS so greedy streams run to max_tokens (random weights seldom pick it anyway).
EOS=$("$VEIL" info "$MODEL" | awk '$1 == "tokenizer.ggml.eos_token_id" { print $3; exit }')

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# The server's stdout goes through a FIFO: reading its "ready:" line is the synchronisation.
mkfifo "$tmp/stdout"
# shellcheck disable=SC2086
"$VEIL" serve "$MODEL" --listen 127.0.0.1:0 ${THREADS:+--threads "$THREADS"} ${SERVE_ARGS:-} \
    >"$tmp/stdout" 2>"$tmp/stderr" &
pid=$!
exec 3<"$tmp/stdout"
url=
while IFS= read -r line <&3; do
    case $line in ready:\ *) url=${line#ready: }; break ;; esac
done
if [ -z "$url" ]; then
    echo "serve.sh: the server exited before it was ready:" >&2
    cat "$tmp/stderr" >&2
    exit 1
fi

{
    echo "model: $MODEL (eos ${EOS:-none})"
    echo "server: $url, pid $pid, threads ${THREADS:-default}"
    echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
    echo "commit: $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
} >&2

load_rc=0
# shellcheck disable=SC2086
node "$HERE/serve_load.mjs" --url "$url" --concurrency "$CONC" --max-tokens "$MAX_TOKENS" \
    --requests "$REQUESTS" --pid "$pid" ${EOS:+--ban "$EOS"} ${LOAD_ARGS:-} || load_rc=$?

hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
echo "server peak RSS (VmHWM): $((hwm / 1024)) MiB" >&2
kill -TERM "$pid"
serve_rc=0
wait "$pid" || serve_rc=$?
pid=
exec 3<&-
if [ "$serve_rc" -ne 0 ]; then
    echo "serve.sh: veil serve exited $serve_rc after SIGTERM:" >&2
    cat "$tmp/stderr" >&2
    exit 1
fi
echo "veil serve exited 0 after SIGTERM" >&2
exit "$load_rc"
