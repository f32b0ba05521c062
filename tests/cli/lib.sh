# shellcheck shell=bash
# Helpers for tests/cli/run.sh: run the veil binary with its output captured, named checks
# that print "ok   NAME" / "FAIL NAME: why" / "SKIP NAME: why", and the closing summary line
# "N passed, N failed, N skipped". Sourced, not executed.
#
# A check is a command (usually a small function) run through `check NAME CMD...`. It returns
# 0 when the behaviour is right; otherwise it sets WHY (via `why`) and returns non-zero.
# The want_* assertions below follow that convention and chain with &&.

VEIL=${VEIL:-build/veil}
SHARED=${VEIL_SHARED:-../shared}
VEIL_TIMEOUT=${VEIL_TIMEOUT:-20}

n_pass=0; n_fail=0; n_skip=0
WHY=""

TMP=$(mktemp -d "${TMPDIR:-/tmp}/veil-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/stdout; ERR=$TMP/stderr; RC=0

why() { WHY=$*; return 1; }

check() { # check NAME CMD...
  local name=$1; shift
  WHY=""
  if "$@"; then
    echo "ok   $name"; n_pass=$((n_pass + 1))
  else
    echo "FAIL $name: ${WHY:-failed}"; n_fail=$((n_fail + 1))
  fi
}

skip() { # skip NAME WHY
  echo "SKIP $1: $2"; n_skip=$((n_skip + 1))
}

have_shared() { [ -d "$SHARED" ]; }

# check_shared NAME CMD...: a check that reads the shared data folder; skipped without it.
check_shared() {
  if have_shared; then check "$@"; else skip "$1" "needs ../shared"; fi
}

summary() {
  echo "$n_pass passed, $n_fail failed, $n_skip skipped"
  [ "$n_fail" -eq 0 ]
}

# v ARGS...: runs veil with stdin from /dev/null (or from $STDIN when set); stdout, stderr and
# the exit status land in $OUT, $ERR and $RC. A hang counts as exit 124 instead of stalling.
v() {
  timeout "$VEIL_TIMEOUT" "$VEIL" "$@" <"${STDIN:-/dev/null}" >"$OUT" 2>"$ERR"
  RC=$?
  return 0
}

# describes $RC for messages: "exit 1", "killed by signal 11", "timed out"
rc_text() {
  if [ "$RC" -eq 124 ]; then echo "timed out"
  elif [ "$RC" -ge 128 ]; then echo "killed by signal $((RC - 128))"
  else echo "exit $RC"; fi
}

# the names in a folder, space-separated
listing() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | paste -sd ' '; }

first_err() { head -c 300 "$ERR" | tr '\n' ' '; }

want_rc() { # want_rc N [N...]: the exit status is one of these
  local r
  for r in "$@"; do [ "$RC" -eq "$r" ] && return 0; done
  why "$(rc_text), want exit $*; stderr: $(first_err)"
}

want_err() { # want_err TEXT: stderr holds TEXT (a fixed string)
  grep -qF -- "$1" "$ERR" || why "stderr does not mention '$1': $(first_err)"
}

want_out() { # want_out TEXT: stdout holds TEXT (a fixed string)
  grep -qF -- "$1" "$OUT" || why "stdout does not mention '$1'"
}

want_out_re() { # want_out_re ERE: some stdout line matches
  grep -qE -- "$1" "$OUT" || why "no stdout line matches /$1/"
}

want_err_re() { # want_err_re ERE: some stderr line matches
  grep -qE -- "$1" "$ERR" || why "no stderr line matches /$1/: $(first_err)"
}

want_err_nonempty() { [ -s "$ERR" ] || why "nothing on stderr"; }

want_out_is() { # want_out_is TEXT: stdout is TEXT, ignoring trailing newlines
  local got; got=$(cat "$OUT")
  [ "$got" = "$1" ] || why "stdout is '$(head -c 200 <<<"$got")', want '$1'"
}

want_out_file() { # want_out_file FILE: stdout equals FILE byte for byte
  cmp -s "$OUT" "$1" && return 0
  why "stdout differs from the expected text: $(cmp "$OUT" "$1" 2>&1 | head -n 1)"
}

# the file under src/cli that defines cmd_NAME, or nothing when the command is not written yet
command_source() { grep -lE "^int cmd_$1\(" src/cli/*.c 2>/dev/null | head -n 1; }

# long flags a command's source accepts: getopt_long tables ({"name", required_argument, ...})
# and flags compared as whole string literals ("--name"). --help is handled by src/cli/args.c.
source_long_flags() {
  {
    grep -oE '\{ *"[A-Za-z0-9][A-Za-z0-9-]*" *, *(no|required|optional)_argument' "$1" |
      sed -E 's/^\{ *"([^"]*)".*/--\1/'
    grep -oE '"--[A-Za-z0-9][A-Za-z0-9-]*"' "$1" | tr -d '"'
    echo --help
  } | sort -u
}

# decode_json_string: stdin is the inside of a JSON string (no quotes); prints the bytes it
# stands for. Handles the escapes JSON defines; \uXXXX only below 0x80 (enough for goldens).
decode_json_string() {
  awk 'BEGIN { RS = "\001" }
  {
    s = $0; sub(/\n$/, "", s); out = ""
    while ((i = index(s, "\\")) > 0) {
      out = out substr(s, 1, i - 1); c = substr(s, i + 1, 1); s = substr(s, i + 2)
      if (c == "n") out = out "\n"; else if (c == "t") out = out "\t"
      else if (c == "r") out = out "\r"; else if (c == "b") out = out "\b"
      else if (c == "f") out = out "\f"
      else if (c == "u") { out = out sprintf("%c", hex(substr(s, 1, 4))); s = substr(s, 5) }
      else out = out c
    }
    printf "%s", out s
  }
  function hex(h,   i, n) {
    n = 0
    for (i = 1; i <= length(h); i++) n = n * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
    return n
  }'
}

# logits_close REF_FILE TOL: compares the "pos N:" lines of $OUT with those of REF_FILE, each
# value within TOL absolute or TOL relative. Prints the first mismatch; status 1 on mismatch.
logits_close() {
  awk -v tol="$2" '
    function abs(x) { return x < 0 ? -x : x }
    FNR == NR { if ($1 == "pos") ref[$2] = $0; next }
    $1 == "pos" {
      seen[$2] = 1
      if (!($2 in ref)) { printf "unexpected line %s %s\n", $1, $2; bad = 1; exit }
      n = split(ref[$2], r, " ")
      if (n != NF) { printf "%s %s has %d values, want %d\n", $1, $2, NF - 2, n - 2; bad = 1; exit }
      for (i = 3; i <= NF; i++) {
        d = abs($i - r[i])
        if (d > tol && d > tol * abs(r[i])) {
          printf "%s %s logit %d: %s, want %s\n", $1, $2, i - 3, $i, r[i]; bad = 1; exit
        }
      }
    }
    END {
      if (bad) exit 1
      for (p in ref) if (!(p in seen)) { printf "no line pos %s\n", p; exit 1 }
    }' "$1" "$OUT"
}
