# shellcheck shell=bash disable=SC2034  # sets variables bench/registry.sh reads
# bench/registry_secure.sh — the --secure setup of bench/registry.sh (sourced, not run):
# a CA and a server certificate for 127.0.0.1 made with openssl, an htpasswd file (bcrypt,
# `htpasswd -B`), both registries started from the same http.tls + auth.htpasswd
# sections, nginx with the same certificate, and the client arguments that trust the CA
# and send the credentials. Sets R_URL R_PID D_URL D_PID CURL_SEC WRK_SEC SKOPEO_DEST
# SKOPEO_SRC NGINX_LISTEN N_SCHEME MODE.

secure_setup() {
  local t=$WORK/tls
  mkdir -p "$t/certs.d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=regfs bench CA" -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null &&
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$t/server.ext" &&
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -set_serial 1 \
    -days 2 -extfile "$t/server.ext" -out "$t/server.pem" 2>/dev/null ||
    { say "openssl could not make the certificates"; return 1; }
  cp "$t/ca.pem" "$t/certs.d/ca.crt"
  chmod -R a+rX "$t"   # nginx's workers; test keys only
  BENCH_PW=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
  htpasswd -Bbn bench "$BENCH_PW" >"$WORK/htpasswd" 2>/dev/null || { say "htpasswd -B failed"; return 1; }
  TLS_YAML="  tls:
    certificate: $t/server.pem
    key: $t/server.key"
  AUTH_YAML="auth:
  htpasswd:
    realm: regfs-bench
    path: $WORK/htpasswd"
}

# secure_start KIND DIR EXTRA_YAML — regfs-registry or docker-registry over TLS; waits
# for /v2/ to answer 200 or 401. Sets REGISTRY_URL REGISTRY_PID REGISTRY_LOG.
secure_start() {
  local kind=$1 i code
  _registry_config "$kind" "$2" "$3" || return 1
  if [ "$kind" = regfs-registry ]; then
    start_bg "$kind-$_CFG_PORT" "$REGFS_REGISTRY" serve "$REGISTRY_CONFIG"
  else
    start_bg "$kind-$_CFG_PORT" env -u AWS_CA_BUNDLE REGISTRY_STORAGE_DELETE_ENABLED=true \
      OTEL_SDK_DISABLED=true "$DOCKER_REGISTRY" serve "$REGISTRY_CONFIG"
  fi
  REGISTRY_PID=$BG_PID; REGISTRY_URL=https://127.0.0.1:$_CFG_PORT
  REGISTRY_LOG=$WORK/$kind-$_CFG_PORT.log
  for ((i = 0; i < 150; i++)); do
    code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' --cacert "$WORK/tls/ca.pem" "$REGISTRY_URL/v2/")
    case $code in 200|401) return 0 ;; esac
    kill -0 "$REGISTRY_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "$kind did not come up over TLS: $(tail -n 5 "$REGISTRY_LOG")"
  return 1
}

secure_start_registries() {
  local auth=1 code
  if ! secure_start regfs-registry "$WORK/data-regfs" "$TLS_YAML
$AUTH_YAML"; then
    grep -qi -e htpasswd -e auth "$REGISTRY_LOG" 2>/dev/null || return 1
    auth=0
  else
    # a build without htpasswd may start and ignore auth: (a warning): it must say 401
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/tls/ca.pem" "$REGISTRY_URL/v2/")
    [ "$code" = 401 ] || { stop_pid "$REGISTRY_PID"; auth=0; }
  fi
  if [ $auth = 0 ]; then
    say "this regfs-registry does not enforce auth.htpasswd ($(grep -i -m1 -e htpasswd -e auth "$REGISTRY_LOG" | cut -c1-160)): TLS only, for both"
    secure_start regfs-registry "$WORK/data-regfs" "$TLS_YAML" || return 1
  fi
  R_URL=$REGISTRY_URL; R_PID=$REGISTRY_PID
  local extra=$TLS_YAML
  [ $auth = 1 ] && extra+=$'\n'$AUTH_YAML
  secure_start docker-registry "$WORK/data-docker" "$extra" || return 1
  D_URL=$REGISTRY_URL; D_PID=$REGISTRY_PID
  local cd=$WORK/tls/certs.d
  CURL_SEC=(--cacert "$WORK/tls/ca.pem"); WRK_SEC=()
  SKOPEO_DEST=(--dest-cert-dir "$cd"); SKOPEO_SRC=(--src-cert-dir "$cd")
  MODE="TLS (ECDSA P-256)"
  if [ $auth = 1 ]; then
    CURL_SEC+=(-u "bench:$BENCH_PW")
    WRK_SEC=(-H "Authorization: Basic $(printf 'bench:%s' "$BENCH_PW" | base64 -w0)")
    SKOPEO_DEST+=(--dest-creds "bench:$BENCH_PW"); SKOPEO_SRC+=(--src-creds "bench:$BENCH_PW")
    MODE+=" + htpasswd (bcrypt)"
  fi
  MODE+=" on both registries; nginx with TLS, no auth"
  NGINX_LISTEN=" ssl; ssl_certificate $WORK/tls/server.pem; ssl_certificate_key $WORK/tls/server.key"
  N_SCHEME=https
}
