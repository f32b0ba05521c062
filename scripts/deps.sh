#!/usr/bin/env bash
# Installs the Debian packages veil needs to build and test. Idempotent: does nothing
# (and needs no network) when everything is already there. Run as root, or with sudo.
set -euo pipefail

PKGS=(
  gcc make pkg-config
  clang libclang-rt-14-dev      # libFuzzer targets and sanitizer runtimes
  libpcre2-dev                  # BPE pre-tokenizer regexes (UTF + UCP + JIT)
  libutf8proc-dev               # Unicode NFC for Qwen tokenizers
  libevent-dev                  # evhttp: the OpenAI-compatible HTTP server (veil serve)
  libjansson-dev                # JSON for the HTTP API
  libssl-dev                    # OpenSSL 3: TLS 1.3 and RA-TLS certificates
  libsodium-dev                 # Ed25519, SHA-256, sealed boxes (ledger, attestation, E2E)
  gdb                           # gcore: the canary test dumps a proxy's memory mid-request
  libsqlite3-dev                # the ledger node's store (WAL, durable blocks)
  sqlite3                       # the e2e payments test reads the nodes' accounting files
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# node and npm run the end-to-end tests (the official openai SDK, pinned by a lock file); a
# machine that already has a node of its own keeps it.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "deps: missing packages (${missing[*]}) and not root; install them with apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
