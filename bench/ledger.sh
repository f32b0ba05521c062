#!/usr/bin/env bash
# The "Ledger" benchmark of bench/README.md: `veil chain bench` (voucher checks per second,
# durable transactions per second at several block sizes, disk bytes per transaction), then a
# real node under L concurrent loaders over HTTP: acknowledged transactions per second and the
# average block size the group commit made.
#
#   bash bench/ledger.sh [TXS]
#
# TXS (default 20000) is the size of the in-process runs. Environment: VEIL (binary, default
# build/veil), LOADERS (levels, default 1,4,16), SECONDS_PER_LEVEL (default 5).
set -euo pipefail
VEIL=${VEIL:-build/veil}
TXS=${1:-20000}
LOADERS=${LOADERS:-1,4,16}
SECS=${SECONDS_PER_LEVEL:-5}

tmp=$(mktemp -d)
pid=
loaders=()
cleanup() {
    for p in "${loaders[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

"$VEIL" chain bench --txs "$TXS" --db "$tmp/bench.db"

"$VEIL" wallet new --key "$tmp/owner.key" >/dev/null
"$VEIL" chain init --db "$tmp/node.db" --key "$tmp/owner.key" >/dev/null
"$VEIL" chain serve --db "$tmp/node.db" --listen 127.0.0.1:0 >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
url=
for _ in $(seq 200); do
    url=$(sed -n 's/^ready: //p' "$tmp/serve.out")
    [ -n "$url" ] && break
    kill -0 "$pid" || { cat "$tmp/serve.err" >&2; exit 1; }
    sleep 0.05
done
[ -n "$url" ] || { echo "ledger.sh: the node did not start" >&2; exit 1; }
sink=$("$VEIL" wallet show --key "$tmp/owner.key" | awk '/^address/ { print $2 }')
max=$(tr , '\n' <<<"$LOADERS" | sort -n | tail -1)
for k in $(seq "$max"); do
    "$VEIL" wallet new --key "$tmp/k$k.key" >/dev/null
    a=$("$VEIL" wallet show --key "$tmp/k$k.key" | awk '/^address/ { print $2 }')
    "$VEIL" chain mint "$a" 100000000 --node "$url" --key "$tmp/owner.key" >/dev/null
done

height() { curl -s "$url/v1/status" | sed -E 's/.*"height":([0-9]+).*/\1/'; }
echo
echo "| loaders | acknowledged txs/s | txs per block |"
echo "|---|---|---|"
for n in $(tr , ' ' <<<"$LOADERS"); do
    rm -f "$tmp"/acks*
    h0=$(height)
    loaders=()
    for k in $(seq "$n"); do
        "$VEIL" chain load --node "$url" --key "$tmp/k$k.key" --to "$sink" --count 100000000 \
            --acks "$tmp/acks$k" >/dev/null 2>&1 &
        loaders+=($!)
    done
    sleep "$SECS" # the measurement window, not synchronisation
    for p in "${loaders[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${loaders[@]}"; do wait "$p" 2>/dev/null || true; done
    loaders=()
    acks=$(cat "$tmp"/acks* | wc -l)
    blocks=$(( $(height) - h0 ))
    awk -v n="$n" -v a="$acks" -v s="$SECS" -v b="$blocks" \
        'BEGIN { printf "| %d | %.0f | %.1f |\n", n, a / s, b ? a / b : 0 }'
done
kill "$pid"
wait "$pid"
pid=
"$VEIL" chain verify --db "$tmp/node.db" >/dev/null
