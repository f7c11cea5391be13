#!/bin/bash
# tests/fuzz/run.sh BUILD SECONDS — run each libFuzzer target of BUILD (a build
# dir configured with CC=clang -Dfuzz=true) for SECONDS, on a seed corpus
# made now from the unit tests' sample layers (small variant). Crashes are
# written to BUILD/fuzz-crashes/<target>/; the exit status is non-zero when
# any target found one. Each crash becomes a regression unit test.
set -u -o pipefail
build=${1:?usage: run.sh BUILD SECONDS}
secs=${2:?usage: run.sh BUILD SECONDS}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/regfs-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 "$here/../unit/test_layer_samples.py" "$work/s" --small >/dev/null || exit 1
mkdir -p "$work/tar" "$work/gzip" "$work/index"
for t in "$work"/s/*.tar; do
  n=$(basename "$t" .tar)
  cp "$t" "$work/tar/$n"
  gzip -c -6 "$t" >"$work/gzip/$n.gz"
  cp "$t" "$work/gzip/$n"
  "$build/tests/fuzz/mkindex" "$t" "$work/index/$n" || exit 1
  "$build/tests/fuzz/mkindex" "$work/gzip/$n.gz" "$work/index/$n.gz" || exit 1
done

# bearer tokens: byte 0 odd = "header.claims" that fuzz_jwt signs itself
mkdir -p "$work/jwt" "$work/wwwauth"
python3 - "$work/jwt" <<'PY' || exit 1
import base64, json, sys
b = lambda d: base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=")
h = b({"alg": "EdDSA", "kid": "fuzz"})
c = b({"iss": "fuzz-issuer", "aud": ["fuzz-service"], "exp": 1700000300, "nbf": 1699999990,
       "sub": "u", "access": [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]},
                              {"type": "registry", "name": "catalog", "actions": ["*"]}]})
open(sys.argv[1] + "/signed", "wb").write(b"\x01" + h + b"." + c)
open(sys.argv[1] + "/raw", "wb").write(b"\x00" + h + b"." + c + b".AAAA")
PY
printf 'Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"' \
  >"$work/wwwauth/bearer"
printf 'Basic realm="x\\"y", error=invalid_token' >"$work/wwwauth/basic"

# Authorization headers and htpasswd lines
mkdir -p "$work/auth"
printf 'Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==' >"$work/auth/basic"
printf 'Basic Og==' >"$work/auth/empty"
printf 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig' >"$work/auth/bearer"
printf 'alice:$2y$04$go3h0eNji58wIen2/S7fa.ZRFYkXYFUrwTFjbZsUi11eC5CpLzNou' >"$work/auth/line"
printf 'carol:$apr1$g.FQ1uqD$awXwboPVkGssScRtRMAXN/\r' >"$work/auth/md5"

status=0
for pair in fuzz_tar:tar fuzz_gzip:gzip fuzz_index_decode:index fuzz_authorization:auth fuzz_jwt:jwt \
    fuzz_www_authenticate:wwwauth; do
  target=${pair%%:*} corpus=$work/${pair##*:}
  crashes=$build/fuzz-crashes/$target
  mkdir -p "$crashes"
  echo "== $target ($secs s)"
  if ! "$build/tests/fuzz/$target" -max_total_time="$secs" -max_len=1048576 \
      -rss_limit_mb=2048 -timeout=20 -artifact_prefix="$crashes/" -print_final_stats=1 \
      "$corpus" 2>"$work/$target.log"; then
    status=1
    echo "$target: FAILED (artifacts in $crashes)"
    grep -E "ERROR|SUMMARY|Test unit written" "$work/$target.log" | head -20
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$work/$target.log"
done
exit $status
