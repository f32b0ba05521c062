#!/usr/bin/env bash
# CLI tests: runs build/veil (or $VEIL) from the repository root the way a user would and checks
# exit statuses, messages and outputs: dispatch, every command's --help and flag errors, missing
# and corrupt model files, and each command's results against bundled or shared reference
# data. Checks that need ../shared (or $VEIL_SHARED) are skipped without it; the checks of a
# command whose source is not written yet are skipped (once src/cli defines cmd_NAME, they
# run). Ends with "N passed, N failed, N skipped"; exit status 1 when any check failed.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh

MODEL=models/stories260K.gguf
COMMANDS=(run info tokenize eval convert quantize bench serve)

if [ ! -x "$VEIL" ]; then
  echo "FAIL binary: $VEIL is not built"
  n_fail=1; summary; exit 1
fi

# ---------------------------------------------------------------- dispatch

t_top_help() {
  v --help && want_rc 0 || return 1
  local c
  for c in "${COMMANDS[@]}"; do want_out_re "^ +$c " || return 1; done
}
t_no_args() { v && want_rc 2 && want_err "usage"; }
t_unknown_command() { v frobnicate && want_rc 2 && want_err "frobnicate"; }

check veil_help t_top_help
check veil_no_args t_no_args
check veil_unknown_command t_unknown_command

# ---------------------------------------------------------------- every command

# cmd_args CMD MODEL: sets ARGS to a well-formed invocation of CMD on MODEL (for convert, the
# checkpoint), to which the checks below add one defect each.
cmd_args() {
  case $1 in
    run) ARGS=("$2" -p "Once" -n 1 --temp 0) ;;
    info | tokenize) ARGS=("$2") ;;
    eval) ARGS=("$2" --tokens 1) ;;
    convert) ARGS=("$2" "$TMP/tokenizer.bin" "$TMP/out.gguf") ;;
    quantize) ARGS=("$2" "$TMP/quantized.gguf" Q8_0) ;;
    bench) ARGS=("$2" --pp 1 --tg 1 --reps 1) ;;
    serve) ARGS=("$2" --listen 127.0.0.1:0) ;;
  esac
}

# long flags each command is known to take, in addition to those read from its source
known_flags() {
  case $1 in
    run) echo --temp ;;
    tokenize) echo --no-bos ;;
    eval) echo --tokens ;;
    convert) echo --name ;;
  esac
}

t_cmd_help() { # CMD SOURCE
  v "$1" --help && want_rc 0 || return 1
  local f
  for f in $( (source_long_flags "$2"; known_flags "$1") | sort -u); do
    grep -qE -- "$f([^A-Za-z0-9-]|$)" "$OUT" || why "--help does not mention $f" || return 1
  done
}

t_cmd_bad_flag() {
  cmd_args "$1" "$MODEL"
  v "$1" "${ARGS[@]}" --no-such-flag && want_rc 2 && want_err "no-such-flag"
}

t_cmd_missing_model() {
  local path=$TMP/nowhere/missing-model.gguf
  cmd_args "$1" "$path"
  v "$1" "${ARGS[@]}" && want_rc 1 && want_err "$path"
}

for c in "${COMMANDS[@]}"; do
  src=$(command_source "$c")
  if [ -z "$src" ]; then
    for t in help bad_flag missing_model; do skip "${c}_$t" "cmd_$c is not written yet"; done
    continue
  fi
  check "${c}_help" t_cmd_help "$c" "$src"
  check "${c}_bad_flag" t_cmd_bad_flag "$c"
  check "${c}_missing_model" t_cmd_missing_model "$c"
done

# ---------------------------------------------------------------- info

t_info_model() {
  v info "$MODEL" && want_rc 0 &&
    want_out_re '^ *general\.architecture .*"llama"' &&
    want_out_re '^ *blk\.0\.attn_q\.weight '
}

t_info_usage() {
  v info && want_rc 2 || return 1
  v info "$MODEL" "$MODEL" && want_rc 2
}

# patch FILE OFFSET HEXBYTES: overwrites bytes in place ("ffff" = two 0xff bytes)
patch() {
  printf '%b' "$(sed -E 's/(..)/\\x\1/g' <<<"$3")" |
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Damaged copies of the bundled model: every one must be refused with a message naming it.
make_corrupt_ggufs() {
  local d=$TMP/corrupt size
  mkdir -p "$d"
  size=$(stat -c %s "$MODEL")
  : >"$d/empty.gguf"
  local n
  for n in 3 4 8 24 100 1000 $((size / 2)) $((size - 1)); do
    head -c "$n" "$MODEL" >"$d/trunc-$n.gguf"
  done
  tail -c +5001 "$MODEL" | head -c 4096 >"$d/garbage.gguf"         # weights, not a header
  { printf GGUF; cat "$d/garbage.gguf"; } >"$d/magic-garbage.gguf"
  cp "$MODEL" "$d/version.gguf";    patch "$d/version.gguf" 4 63000000
  cp "$MODEL" "$d/n-tensors.gguf";  patch "$d/n-tensors.gguf" 8 ffffffffffffff7f
  cp "$MODEL" "$d/n-kv.gguf";       patch "$d/n-kv.gguf" 16 ffffffff00000000
  cp "$MODEL" "$d/key-len.gguf";    patch "$d/key-len.gguf" 24 0000000000000040
  printf '%s\n' "$d"/*.gguf
}

t_info_corrupt() { # FILE
  v info "$1"
  [ "$RC" -lt 128 ] || why "$(rc_text) on $(basename "$1")" || return 1
  want_rc 1 && want_err "$1"
}

t_info_directory() { v info models && want_rc 1 && want_err "models"; }

check info_model t_info_model
check info_usage t_info_usage
check info_directory t_info_directory
for f in $(make_corrupt_ggufs); do
  check "info_corrupt_$(basename "$f" .gguf)" t_info_corrupt "$f"
done

# ---------------------------------------------------------------- eval

t_eval_shape() {
  v eval "$MODEL" --tokens 1,403,407 && want_rc 0 || return 1
  local bad
  bad=$(awk '
    NR > 3 { print "more than 3 lines"; exit }
    $1 != "pos" || $2 != (NR - 1) ":" { print "line " NR " starts \"" $1 " " $2 "\""; exit }
    NF != 514 { print "line " NR " has " NF - 2 " numbers, want 512"; exit }
    { for (i = 3; i <= NF; i++)
        if ($i !~ /^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/) {
          print "line " NR ": \"" $i "\" is not a number"; exit } }
    END { if (NR < 3) print "only " NR " lines" }' "$OUT")
  [ -z "$bad" ] || why "$bad"
}

t_eval_bad_tokens() { # LIST ITEM: --tokens LIST is refused with a message quoting ITEM
  v eval "$MODEL" --tokens "$1" && want_rc 1 2 && want_err "'$2'"
}

t_eval_no_tokens() { v eval "$MODEL" && want_rc 2; }

# ref.txt of a llama.cpp reference: its prompt through veil eval, every logit within 1e-4
t_eval_reference() { # GGUF REF
  local ids
  ids=$(sed -n 's/^prompt: //p' "$2" | tr ' ' ',')
  [ -n "$ids" ] || why "no prompt line in $2" || return 1
  v eval "$1" --tokens "$ids" && want_rc 0 || return 1
  local diff
  diff=$(logits_close "$2" 1e-4) || why "$diff"
}

check eval_shape t_eval_shape
check eval_no_tokens t_eval_no_tokens
check eval_token_out_of_range t_eval_bad_tokens 1,512 512
check eval_token_empty_item t_eval_bad_tokens 1,,2 ""
check eval_token_not_a_number t_eval_bad_tokens 1,x x
check eval_token_negative t_eval_bad_tokens -1 -1
check eval_token_trailing_comma t_eval_bad_tokens 1,2, ""
check eval_token_empty_list t_eval_bad_tokens "" ""
REF=$SHARED/reference/llamacpp
check_shared eval_tiny_llama_reference t_eval_reference "$REF/tiny-llama-F32.gguf" "$REF/tiny-llama-F32.ref.txt"
check_shared eval_stories260K_reference t_eval_reference "$MODEL" "$REF/stories260K.ref.txt"

# ---------------------------------------------------------------- convert

t_convert_reproduces_bundled() {
  local d=$TMP/conv-ok
  mkdir -p "$d"
  v convert "$SHARED/models/stories260K.bin" "$SHARED/models/tok512.bin" "$d/out.gguf" &&
    want_rc 0 || return 1
  cmp -s "$d/out.gguf" "$MODEL" || why "output differs from $MODEL: $(cmp "$d/out.gguf" "$MODEL" 2>&1)" || return 1
  [ "$(listing "$d")" = out.gguf ] || why "left behind: $(listing "$d")"
}

t_convert_arg_count() {
  local n
  for n in 0 1 2 4; do
    v convert $(seq -f "$TMP/a%g" 1 "$n")
    want_rc 2 || why "$n arguments: $WHY" || return 1
  done
}

t_convert_empty_name() { v convert a b c --name "" && want_rc 2; }

# CKPT TOK BAD: the conversion fails naming BAD, and the output folder ends up as it began
t_convert_refused() {
  local d=$TMP/conv-fail-$RANDOM
  mkdir -p "$d"
  v convert "$1" "$2" "$d/out.gguf" && want_rc 1 && want_err "$3" || return 1
  [ -z "$(listing "$d")" ] || why "left behind: $(listing "$d")" || return 1
  # a failed conversion must not touch an existing OUT either
  echo keep >"$d/out.gguf"
  v convert "$1" "$2" "$d/out.gguf" && want_rc 1 || return 1
  [ "$(cat "$d/out.gguf")" = keep ] || why "existing output was changed"
  [ "$(listing "$d")" = out.gguf ] || why "left behind: $(listing "$d")"
}

check convert_arg_count t_convert_arg_count
check convert_empty_name t_convert_empty_name
# a v0 header (dim 8, hidden 16, 1 layer, 2/2 heads, vocab 4, seq_len 4) and no weights
printf '\x08\0\0\0\x10\0\0\0\x01\0\0\0\x02\0\0\0\x02\0\0\0\x04\0\0\0\x04\0\0\0' >"$TMP/header-only.bin"
check convert_header_only_checkpoint t_convert_refused "$TMP/header-only.bin" "$TMP/no-tok.bin" "$TMP/header-only.bin"
if have_shared; then
  head -c 500000 "$SHARED/models/stories260K.bin" >"$TMP/trunc-ckpt.bin"
  head -c 3000 "$SHARED/models/tok512.bin" >"$TMP/trunc-tok.bin"
fi
check_shared convert_reproduces_bundled t_convert_reproduces_bundled
check_shared convert_truncated_checkpoint t_convert_refused "$TMP/trunc-ckpt.bin" "$SHARED/models/tok512.bin" "$TMP/trunc-ckpt.bin"
check_shared convert_truncated_tokenizer t_convert_refused "$SHARED/models/stories260K.bin" "$TMP/trunc-tok.bin" "$TMP/trunc-tok.bin"

# ---------------------------------------------------------------- tokenize

t_tokenize() { # WANT FLAGS...
  local want=$1; shift
  printf 'Once upon a time' >"$TMP/prompt.txt"
  STDIN=$TMP/prompt.txt v tokenize "$MODEL" "$@" && want_rc 0 && want_out_is "$want"
}

if [ -n "$(command_source tokenize)" ]; then
  check tokenize_stories t_tokenize "1 403 407 261 378"
  check tokenize_no_bos t_tokenize "403 407 261 378" --no-bos
else
  for t in tokenize_stories tokenize_no_bos; do skip "$t" "cmd_tokenize is not written yet"; done
fi

# ---------------------------------------------------------------- run

# golden CASE: the stdout llama2.c printed for the case headed `=== case CASE` in greedy.txt
golden() {
  awk -v hdr="=== case $1" '
    index($0, hdr) == 1 { on = 1; next }
    on && /^stdout: "/ { sub(/^stdout: "/, ""); sub(/"$/, ""); print; exit }' \
    "$SHARED/reference/stories260K/greedy.txt" | decode_json_string
}

# PROMPT N CASE: greedy generation of N tokens equals llama2.c's output byte for byte. llama2.c
# counts steps as positions including BOS and the prompt, so its `steps` = prompt tokens with
# BOS + N - 1; for the empty prompt that is N.
t_run_golden() {
  golden "$3" >"$TMP/golden.txt"
  [ -s "$TMP/golden.txt" ] || why "no case '$3' in greedy.txt" || return 1
  v run "$MODEL" -p "$1" -n "$2" --temp 0 && want_rc 0 && want_out_file "$TMP/golden.txt"
}

t_run_bad_value() { v run "$MODEL" "$@" && want_rc 2 && want_err "${!#}"; }

if [ -n "$(command_source run)" ]; then
  check_shared run_greedy_200 t_run_golden "" 200 'prompt="" steps=200'
  check_shared run_greedy_prompt t_run_golden "Once upon a time" 60 'prompt="Once upon a time" steps=64'
  check run_bad_token_count t_run_bad_value -p x -n abc
  check run_bad_temperature t_run_bad_value -p x --temp hot
else
  for t in run_greedy_200 run_greedy_prompt run_bad_token_count run_bad_temperature; do
    skip "$t" "cmd_run is not written yet"
  done
fi

# ---------------------------------------------------------------- quantize

# TYPE FTYPE: the bundled model converted to TYPE (any case) loads, says it is FTYPE and runs
t_quantize_bundled() {
  local out=$TMP/q-$1.gguf
  v quantize "$MODEL" "$out" "$1" && want_rc 0 && want_out "converted to" || return 1
  v info "$out" && want_rc 0 && want_out_re "general\.file_type .* $2\$" &&
    want_out_re "^ *blk\.0\.attn_q\.weight +$(tr a-z A-Z <<<"$1") " || return 1
  v eval "$out" --tokens 1,403,407 && want_rc 0 && want_out "pos 2:"
}

t_quantize_bad_type() {
  rm -f "$TMP/q-bad.gguf"
  v quantize "$MODEL" "$TMP/q-bad.gguf" Q5_K && want_rc 2 && want_err "Q5_K" || return 1
  [ ! -e "$TMP/q-bad.gguf" ] || why "an output was written"
}

check quantize_q8_0 t_quantize_bundled Q8_0 7
check quantize_q4_0_lower_case t_quantize_bundled q4_0 2
check quantize_bf16 t_quantize_bundled bf16 32
check quantize_bad_type t_quantize_bad_type

# ---------------------------------------------------------------- bench

# SHAPE: a made model of a (test-only) shape measures, and generates text with veil run
t_bench_made_model() {
  local m=$TMP/made-$1.gguf
  v bench --make-model "$1" Q4_0 "$m" --threads 2 && want_rc 0 && want_out "wrote $m" || return 1
  v bench "$m" --pp 4 --tg 2 --batch 2 --reps 1 --membw 10 --json && want_rc 0 || return 1
  local k
  for k in pp_tps tg_tps tg_batch_tps bytes_per_token membw_gbs peak_rss_bytes; do
    want_out_re "\"$k\":[0-9]" || return 1
  done
  v bench "$m" --pp 4 --tg 2 --batch 2 --reps 1 --membw 10 --profile && want_rc 0 &&
    want_out "tokens/s" && want_out "ffn_gate_up" || return 1
  v run "$m" -p "hello world" -n 4 --temp 0 && want_rc 0
}

t_bench_bad_shape() { v bench --make-model nope Q4_0 "$TMP/x.gguf" && want_rc 2 && want_err "nope"; }
t_bench_membw() { v bench --membw --json && want_rc 0 && want_out_re '^\{"membw_gbs":[0-9]'; }
# --buffer sets the probe's size; with a model, or out of range, it is a usage error
t_bench_membw_buffer() {
  v bench --membw --buffer 8 --json && want_rc 0 && want_out_re '"buffer_bytes":8388608' || return 1
  v bench --membw --buffer 0 && want_rc 2 && want_err "--buffer" || return 1
  v bench "$TMP/x.gguf" --buffer 8 && want_rc 2 && want_err "applies to --membw alone"
}

check bench_made_llama t_bench_made_model test-llama
check bench_made_qwen3 t_bench_made_model test-qwen3
check bench_bad_shape t_bench_bad_shape
check bench_membw t_bench_membw
check bench_membw_buffer t_bench_membw_buffer

# ---------------------------------------------------------------- --device

# an unknown device is a usage error in every command that takes --device
t_device_bad() { # CMD
  cmd_args "$1" "$MODEL"
  v "$1" "${ARGS[@]}" --device gpu && want_rc 2 && want_err "cpu, cuda or cuda:N"
}
# --device cpu is the default; --device cuda works on a GPU, else fails saying why
t_device_cpu_run() { v run "$MODEL" -p "Once" -n 4 --temp 0 --device cpu && want_rc 0 && want_out "Once"; }
t_device_cuda() {
  v run "$MODEL" -p "Once" -n 4 --temp 0 --device cuda
  [ "$RC" = 0 ] && return 0
  want_rc 1 && want_err_re "without CUDA|GPU|cuda"
}
for c in run eval bench serve; do check "device_bad_$c" t_device_bad "$c"; done
check device_cpu_run t_device_cpu_run
check device_cuda t_device_cuda

# ---------------------------------------------------------------- wallet

# the key of tests/ledger/ton_vectors.h (seed 01..20) and its wallet v4r2 address per @ton/ton
WALLET_SEED=0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20
WALLET_PUB=79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664
WALLET_ADDR=UQDnHytfNeXNUvfdRx41nlsVqT_DuI_WvFzMrNnVr7n8hT3L
WALLET_RAW=0:e71f2b5f35e5cd52f7dd471e359e5b15a93fc3b88fd6bc5cccacd9d5afb9fc85

t_wallet_help() { v wallet --help && want_rc 0 && want_out "--key" && want_out "wallet new"; }

t_wallet_new_then_show() {
  local home=$TMP/wallet-home
  rm -rf "$home"
  VEIL_HOME=$home v wallet new && want_rc 0 && want_out_re '^address  UQ[A-Za-z0-9_-]{46}$' || return 1
  local made; made=$(cat "$OUT")
  [ "$(stat -c %a "$home/wallet.key")" = 600 ] || why "key file mode $(stat -c %a "$home/wallet.key")" || return 1
  [ "$(stat -c %a "$home")" = 700 ] || why "VEIL_HOME mode $(stat -c %a "$home")" || return 1
  VEIL_HOME=$home v wallet show && want_rc 0 || return 1
  [ "$(cat "$OUT")" = "$made" ] || why "show prints '$(head -c 200 "$OUT")', new printed '$made'" || return 1
  VEIL_HOME=$home v wallet new && want_rc 1 && want_err "already exists" || return 1
  [ "$(VEIL_HOME=$home "$VEIL" wallet show 2>/dev/null)" = "$made" ] || why "the key changed after a refused new"
}

t_wallet_known_key() {
  local key=$TMP/known.key
  rm -f "$key"
  (umask 077; printf 'veil-ed25519-key v1\nseed %s\npublic %s\n' "$WALLET_SEED" "$WALLET_PUB" >"$key")
  v wallet show --key "$key" && want_rc 0 && want_out "address  $WALLET_ADDR" &&
    want_out "raw      $WALLET_RAW" && want_out "public   $WALLET_PUB"
}

t_wallet_refuses_shared_key() {
  local key=$TMP/shared.key
  rm -f "$key"
  v wallet new --key "$key" && want_rc 0 || return 1
  chmod 644 "$key"
  v wallet show --key "$key" && want_rc 1 && want_err "has mode 0644" && want_err "chmod 600"
}

t_wallet_missing_key() {
  v wallet show --key "$TMP/nowhere/none.key" && want_rc 1 && want_err "none.key does not exist"
}

t_wallet_usage() {
  v wallet && want_rc 2 || return 1
  v wallet frobnicate && want_rc 2 && want_err "frobnicate" || return 1
  v wallet show --key && want_rc 2 && want_err "--key needs a PATH" || return 1
  v wallet show --no-such-flag && want_rc 2 && want_err "no-such-flag" || return 1
  v wallet show extra && want_rc 2 && want_err "extra"
}

if [ -n "$(command_source wallet)" ]; then
  check wallet_help t_wallet_help
  check wallet_new_then_show t_wallet_new_then_show
  check wallet_known_key_address t_wallet_known_key
  check wallet_refuses_shared_key t_wallet_refuses_shared_key
  check wallet_missing_key t_wallet_missing_key
  check wallet_usage t_wallet_usage
else
  for t in help new_then_show known_key_address refuses_shared_key missing_key usage; do
    skip "wallet_$t" "cmd_wallet is not written yet"
  done
fi

# ---------------------------------------------------------------- network roles
# (what they do end to end is tested in tests/e2e/devnet.test.mjs and network.test.mjs)

t_net_help() { # CMD
  local src
  src=$(command_source "$1")
  t_cmd_help "$1" "$src" || return 1
  case $1 in worker | proxy | client)
    for f in --tee --sim-key --allow-measurements --trust-sim-keys --config --peer-timeout; do
      grep -qF -- "$f" "$OUT" || why "--help does not mention $f" || return 1
    done ;;
  esac
}
t_worker_usage() {
  v worker --model "$MODEL" && want_rc 2 && want_err "--proxy" || return 1
  v worker --proxy 127.0.0.1:1 --no-such-flag && want_rc 2 && want_err "no-such-flag" || return 1
  v worker --model "$MODEL" --proxy nowhere && want_rc 2 && want_err "HOST:PORT"
}
t_worker_missing_model() {
  v worker --model "$TMP/nowhere.gguf" --proxy 127.0.0.1:1 --sim-key "$TMP/w.key"
  want_rc 1 && want_err "$TMP/nowhere.gguf"
}
# worker_try ARGS...: starts `veil worker ARGS` (its proxy need not be up) and waits, bounded,
# until it logged its model line (it started: then SIGTERM, and UP=1) or exited; RC is its exit
# status either way (124 when it did neither in time), its output is in $OUT and $ERR.
worker_try() {
  "$VEIL" worker "$@" </dev/null >"$OUT" 2>"$ERR" &
  local pid=$! i
  UP=0
  for i in $(seq $((VEIL_TIMEOUT * 20))); do
    if grep -q "worker: model '" "$ERR"; then UP=1; kill -TERM "$pid"; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ "$UP" = 0 ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"; wait "$pid"; RC=124; return 0
  fi
  wait "$pid"; RC=$?
  return 0
}
# --device: a bad spec is a usage error (from a config file too); cuda starts on a GPU, else
# the start fails saying why; a config file's `device cpu` runs the worker on the CPU
t_worker_device_bad() {
  v worker --model "$MODEL" --proxy 127.0.0.1:1 --device nonsense && want_rc 2 && want_err "'nonsense'" || return 1
  printf '# a worker\ndevice nonsense\n' >"$TMP/worker-bad.conf"
  v worker --config "$TMP/worker-bad.conf" --model "$MODEL" --proxy 127.0.0.1:1 && want_rc 2 && want_err "'nonsense'"
}
t_worker_device_cuda() {
  worker_try --model "$MODEL" --proxy 127.0.0.1:1 --sim-key "$TMP/w.key" --device cuda
  if [ "$UP" = 1 ]; then want_rc 0 && want_err ", on cuda:0"; return; fi
  want_rc 1 && want_err_re "^veil worker: .*(cuda|CUDA)"
}
t_worker_device_config() {
  printf '# a worker on the CPU\ndevice cpu\nthreads 1\n' >"$TMP/worker.conf"
  worker_try --config "$TMP/worker.conf" --model "$MODEL" --proxy 127.0.0.1:1 --sim-key "$TMP/w.key"
  [ "$UP" = 1 ] || why "the worker did not start: $(rc_text); stderr: $(first_err)" || return 1
  want_rc 0 && want_err ", on cpu (1 thread"
}
t_proxy_bad_files() {
  v proxy --workers 127.0.0.1:0 --clients 127.0.0.1:0 --allow-models "$TMP/none.txt" --sim-key "$TMP/p.key"
  want_rc 1 && want_err "$TMP/none.txt" || return 1
  v proxy --workers 127.0.0.1:0 --clients 127.0.0.1:0 --sim-key "$TMP/p.key" --allow-measurements "$TMP/none.txt"
  want_rc 1 && want_err "$TMP/none.txt"
}
t_proxy_config_file() {
  printf '# a proxy\nworkers 127.0.0.1:notaport\n' >"$TMP/proxy.conf"
  v proxy --config "$TMP/proxy.conf" && want_rc 2 && want_err "notaport" || return 1
  printf 'no-such-setting 1\n' >"$TMP/proxy2.conf"
  v proxy --config "$TMP/proxy2.conf" && want_rc 2 && want_err "no-such-setting" || return 1
  v proxy --config "$TMP/missing.conf" && want_rc 2 && want_err "$TMP/missing.conf" || return 1
  # malformed lines are named by file and line number
  printf '# a proxy\n\n--workers 127.0.0.1:0\n' >"$TMP/proxy3.conf"
  v proxy --config "$TMP/proxy3.conf" && want_rc 2 && want_err "$TMP/proxy3.conf:3: a flag is its name" || return 1
  printf 'tee sim\nworkers 127.0.0.1:0\0\n' >"$TMP/proxy4.conf"
  v proxy --config "$TMP/proxy4.conf" && want_rc 2 && want_err "$TMP/proxy4.conf:2: NUL byte" || return 1
  # flags are checked against the role's: no value taken for the next argument or a stray one
  printf 'allow-unverified-tdx yes\n' >"$TMP/proxy5.conf"
  v proxy --config "$TMP/proxy5.conf" && want_rc 2 && want_err "$TMP/proxy5.conf:1: 'allow-unverified-tdx' takes no value" || return 1
  printf 'tee sim\nworkers\n' >"$TMP/proxy6.conf"
  v proxy --config "$TMP/proxy6.conf" --clients 127.0.0.1:0 && want_rc 2 && want_err "$TMP/proxy6.conf:2: 'workers' needs a value" || return 1
  printf 'model x.gguf\n' >"$TMP/proxy7.conf"
  v proxy --config "$TMP/proxy7.conf" && want_rc 2 && want_err "$TMP/proxy7.conf:1: unknown flag 'model'"
}
t_client_usage() {
  v client --listen 127.0.0.1:0 && want_rc 2 && want_err "--proxy" || return 1
  v client --proxy 127.0.0.1:1 --max-price -1 && want_rc 2 && want_err "max-price" || return 1
  v client --proxy 127.0.0.1:1 --chain http://127.0.0.1:1 --wallet "$TMP/c.key" && want_rc 2 && want_err "--channel" || return 1
  v client --proxy 127.0.0.1:1 --accounts "$TMP/c.db" && want_rc 2 && want_err "--accounts needs them" || return 1
  v client --proxy 127.0.0.1:1 --peer-timeout 1 && want_rc 2 && want_err "--peer-timeout" || return 1
  v client --proxy 127.0.0.1:1 --request-timeout 0 && want_rc 2 && want_err "--request-timeout"
}
# payments flags come together; a ledger that cannot be reached is a clear start-up failure
t_payments_usage() {
  v proxy --chain http://127.0.0.1:1 && want_rc 2 && want_err "--wallet" || return 1
  v worker --model "$MODEL" --proxy 127.0.0.1:1 --wallet "$TMP/w.key" && want_rc 2 && want_err "--chain" || return 1
  "$VEIL" wallet new --key "$TMP/pay.key" >/dev/null || return 1
  v proxy --workers 127.0.0.1:0 --clients 127.0.0.1:0 --sim-key "$TMP/p.key" --chain http://127.0.0.1:1 \
    --wallet "$TMP/pay.key" && want_rc 1 && want_err "127.0.0.1:1"
}
t_devnet_usage() {
  v devnet --workers 0 && want_rc 2 && want_err "workers" || return 1
  v devnet --listen nowhere && want_rc 2 && want_err "HOST:PORT" || return 1
  v devnet --peer-timeout soon && want_rc 2 && want_err "--peer-timeout" || return 1
  v devnet --device gpu && want_rc 2 && want_err "cpu, cuda or cuda:N" || return 1
  v devnet --help && want_rc 0 && want_out "--peer-timeout"
}

for c in worker proxy client devnet; do check "${c}_help" t_net_help "$c"; done
check worker_usage t_worker_usage
check worker_missing_model t_worker_missing_model
check worker_device_bad t_worker_device_bad
check worker_device_cuda t_worker_device_cuda
check worker_device_config t_worker_device_config
check proxy_bad_files t_proxy_bad_files
check proxy_config_file t_proxy_config_file
check client_usage t_client_usage
check payments_usage t_payments_usage
check devnet_usage t_devnet_usage

# ---------------------------------------------------------------- chain

# chain_start DB: starts `veil chain serve` on a free port; sets CHAIN_PID and CHAIN_URL once
# its ready line is out (bounded wait, no sleep as synchronisation)
chain_start() {
  : >"$TMP/chain.out"
  "$VEIL" chain serve --db "$1" --listen 127.0.0.1:0 >"$TMP/chain.out" 2>"$TMP/chain.err" &
  CHAIN_PID=$!
  local i
  for i in $(seq 200); do
    CHAIN_URL=$(sed -n 's/^ready: //p' "$TMP/chain.out")
    [ -n "$CHAIN_URL" ] && return 0
    kill -0 "$CHAIN_PID" 2>/dev/null || break
    sleep 0.05
  done
  why "chain serve did not print its ready line: $(head -c 300 "$TMP/chain.err")"
}

chain_stop() { kill "$CHAIN_PID" 2>/dev/null; wait "$CHAIN_PID" 2>/dev/null; }

addr_of() { "$VEIL" wallet show --key "$1" | awk '/^address/ { print $2 }'; }

t_chain_help() { v chain --help && want_rc 0 && want_out "chain serve" && want_out "--listen" && want_out "verify"; }

t_chain_flow() {
  local d=$TMP/chain-flow; rm -rf "$d"; mkdir -p "$d"
  "$VEIL" wallet new --key "$d/owner.key" >/dev/null && "$VEIL" wallet new --key "$d/a.key" >/dev/null || return 1
  v chain init --db "$d/l.db" --key "$d/owner.key" && want_rc 0 || return 1
  v chain init --db "$d/l.db" --key "$d/owner.key" && want_rc 1 && want_err "exists" || return 1
  chain_start "$d/l.db" || return 1
  local a; a=$(addr_of "$d/a.key")
  v chain mint "$a" 1000 --node "$CHAIN_URL" --key "$d/owner.key" && want_rc 0 || { chain_stop; return 1; }
  v chain mint "$a" 1000 --node "$CHAIN_URL" --key "$d/a.key" && want_rc 1 && want_err "registry owner" ||
    { chain_stop; return 1; }
  v wallet balance --key "$d/a.key" --node "$CHAIN_URL" && want_rc 0 && want_out "balance  1000" ||
    { chain_stop; return 1; }
  v chain registry params --mult-prompt 5000 --node "$CHAIN_URL" --key "$d/owner.key" && want_rc 0 ||
    { chain_stop; return 1; }
  v chain registry show --node "$CHAIN_URL" && want_out_re '^mult_prompt +5000$' || { chain_stop; return 1; }
  v chain registry params --worker-fee 999 --node "$CHAIN_URL" --key "$d/owner.key" && want_rc 2 &&
    want_err "worker_fee_per_token" || { chain_stop; return 1; }
  # bad input over HTTP: 4xx JSON naming the problem, and the ledger stays whole
  local body
  body=$(curl -s -w ' %{http_code}' -X POST "$CHAIN_URL/v1/tx" -d '{"boc":"b5ee9c72"}')
  case $body in *'"code":"bad_boc"'*' 400') ;; *) chain_stop; why "short BOC: $body"; return 1 ;; esac
  body=$(curl -s -w ' %{http_code}' -X POST "$CHAIN_URL/v1/tx" -d 'not json')
  case $body in *'"code":"bad_json"'*' 400') ;; *) chain_stop; why "bad JSON: $body"; return 1 ;; esac
  body=$(curl -s -w ' %{http_code}' "$CHAIN_URL/v1/account/nonsense")
  case $body in *'"param":"address"'*' 400') ;; *) chain_stop; why "bad address: $body"; return 1 ;; esac
  kill "$CHAIN_PID"; wait "$CHAIN_PID" || why "SIGTERM: chain serve exited $?" || return 1
  v chain verify --db "$d/l.db" && want_rc 0 && want_out "ok: 3 blocks, 2 transactions"
}

# kill -9 of the node at random points while three loaders submit: after each restart the
# history verifies and every acknowledged transaction is there
t_chain_crash() {
  local d=$TMP/chain-crash round i k; rm -rf "$d"; mkdir -p "$d"
  "$VEIL" wallet new --key "$d/owner.key" >/dev/null && "$VEIL" chain init --db "$d/l.db" --key "$d/owner.key" \
    >/dev/null || return 1
  chain_start "$d/l.db" || return 1
  for k in 1 2 3; do
    "$VEIL" wallet new --key "$d/k$k.key" >/dev/null
    "$VEIL" chain mint "$(addr_of "$d/k$k.key")" 1000000 --node "$CHAIN_URL" --key "$d/owner.key" >/dev/null || {
      chain_stop; why "funding"; return 1; }
  done
  local sink; sink=$(addr_of "$d/owner.key")
  for round in 1 2 3 4 5; do
    [ "$round" -gt 1 ] && { chain_start "$d/l.db" || return 1; }
    local pids=() want total
    for k in 1 2 3; do
      "$VEIL" chain load --node "$CHAIN_URL" --key "$d/k$k.key" --to "$sink" --count 100000 --acks "$d/acks$k" \
        >/dev/null 2>&1 &
      pids+=($!)
    done
    # kill after a random number of further acknowledgements (bounded wait)
    want=$(( $(cat "$d"/acks* 2>/dev/null | wc -l) + 20 + RANDOM % 200 ))
    for i in $(seq 400); do
      total=$(cat "$d"/acks* 2>/dev/null | wc -l)
      [ "$total" -ge "$want" ] && break
      sleep 0.025
    done
    kill -9 "$CHAIN_PID"; wait "$CHAIN_PID" 2>/dev/null
    for i in "${pids[@]}"; do wait "$i"; done
    v chain verify --db "$d/l.db" && want_rc 0 || return 1
  done
  chain_start "$d/l.db" || return 1
  for k in 1 2 3; do
    v chain check-acks --node "$CHAIN_URL" --acks "$d/acks$k" && want_rc 0 && want_out " 0 missing" ||
      { chain_stop; return 1; }
  done
  chain_stop
  [ "$(cat "$d"/acks* | wc -l)" -ge 100 ] || why "only $(cat "$d"/acks* | wc -l) acknowledgements in 5 rounds"
}

# a client pays a proxy through a channel: open, voucher, redeem, replay refused, close, withdraw
t_channel_flow() {
  local d=$TMP/channel-flow; rm -rf "$d"; mkdir -p "$d"
  local k; for k in owner client proxy; do "$VEIL" wallet new --key "$d/$k.key" >/dev/null || return 1; done
  "$VEIL" chain init --db "$d/l.db" --key "$d/owner.key" >/dev/null || return 1
  chain_start "$d/l.db" || return 1
  local client proxy proxy_pub n=(--node "$CHAIN_URL")
  client=$(addr_of "$d/client.key"); proxy=$(addr_of "$d/proxy.key")
  proxy_pub=$("$VEIL" wallet show --key "$d/proxy.key" | awk '/^public/ { print $2 }')
  "$VEIL" chain registry set proxy "$proxy_pub" --endpoint 127.0.0.1:9 "${n[@]}" --key "$d/owner.key" >/dev/null &&
    "$VEIL" chain registry params --client-close-delay 0 "${n[@]}" --key "$d/owner.key" >/dev/null &&
    "$VEIL" chain mint "$client" 5000000000 "${n[@]}" --key "$d/owner.key" >/dev/null || { chain_stop; why setup; return 1; }
  v channel open "$proxy" --deposit 2000000000 --stake 1000000000 "${n[@]}" --key "$d/client.key" && want_rc 0 ||
    { chain_stop; return 1; }
  local ch; ch=$(awk '/^channel/ { print $2 }' "$OUT")
  v channel voucher "$ch" 700 --key "$d/client.key" && want_rc 0 || { chain_stop; return 1; }
  local voucher; voucher=$(cat "$OUT")
  v channel redeem "$ch" "$voucher" "${n[@]}" --key "$d/proxy.key" && want_rc 0 || { chain_stop; return 1; }
  v channel redeem "$ch" "$voucher" "${n[@]}" --key "$d/proxy.key" && want_rc 1 && want_err "stale" ||
    { chain_stop; return 1; }
  v channel show "$ch" "${n[@]}" && want_out_re '^paid +700$' && want_out_re '^held +2999999300$' ||
    { chain_stop; return 1; }
  v channel withdraw "$ch" "${n[@]}" --key "$d/client.key" && want_rc 1 && want_err "the channel is open" ||
    { chain_stop; return 1; }
  v channel close-request "$ch" "${n[@]}" --key "$d/client.key" && want_rc 0 &&
    v channel close "$ch" "${n[@]}" --key "$d/proxy.key" && want_rc 0 &&
    v channel withdraw "$ch" "${n[@]}" --key "$d/client.key" && want_rc 0 || { chain_stop; return 1; }
  v wallet balance --key "$d/client.key" "${n[@]}" && want_out "balance  4999999300" || { chain_stop; return 1; }
  v wallet balance --key "$d/proxy.key" "${n[@]}" && want_out "balance  700" || { chain_stop; return 1; }
  chain_stop
  v chain verify --db "$d/l.db" && want_rc 0
}

t_channel_usage() {
  v channel && want_rc 2 || return 1
  v channel open && want_rc 2 && want_err "PAYEE" || return 1
  v channel show nonsense --node http://127.0.0.1:1 && want_rc 2 && want_err "nonsense" || return 1
  v channel voucher "0:$(printf '1%.0s' $(seq 64))" 5 && want_rc 2 && want_err "--key"
}

if [ -n "$(command_source channel)" ]; then
  check channel_help t_cmd_help channel "$(command_source channel)"
  check channel_flow t_channel_flow
  check channel_usage t_channel_usage
fi

if [ -n "$(command_source chain)" ]; then
  check chain_help t_chain_help
  check chain_help_flags t_cmd_help chain "$(command_source chain)"
  check chain_flow t_chain_flow
  check chain_crash_kill9 t_chain_crash
else
  for t in help flow crash_kill9; do skip "chain_$t" "cmd_chain is not written yet"; done
fi

summary
