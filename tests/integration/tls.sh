#!/bin/bash
# tls.sh — regfs-registry over TLS (http.tls): clients that verify it with our
# CA (curl --cacert, skopeo --dest-cert-dir/--src-cert-dir, podman, regfs
# --ca-cert), a plain HTTP request on the TLS port, minimumtls, client
# certificates (clientcas: none, another CA's, ours), the certificate renewed
# on SIGHUP (new connections get it, a transfer on an old one finishes, a
# broken file keeps the previous one), and Debian's docker-registry starting
# with the same config file. Certificates are made here with openssl.
. "$(dirname "$0")/lib.sh"
need_regfs_registry
need_bin skopeo umoci openssl curl jq sha256sum

C=$WORK/certs
mkdir -p "$C"
# new_ca NAME — a self-signed CA: NAME.pem, NAME.key
new_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=regfs test $1" -keyout "$C/$1.key" -out "$C/$1.pem" 2>/dev/null
}
# new_cert NAME CA SERIAL EXTENSIONS — a key and a certificate signed by CA
new_cert() {
  [ -f "$C/$1.key" ] || openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=$1" -keyout "$C/$1.key" -out "$C/$1.csr" 2>/dev/null || return 1
  printf '%s\n' "$4" >"$C/$1.ext"
  openssl x509 -req -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2.key" -set_serial "$3" \
    -days 2 -extfile "$C/$1.ext" -out "$C/$1.pem.new" 2>/dev/null && mv "$C/$1.pem.new" "$C/$1.pem"
}
SERVER_EXT="subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
CLIENT_EXT="extendedKeyUsage=clientAuth"
{ new_ca ca && new_ca otherca && new_cert server ca 4097 "$SERVER_EXT" &&
  new_cert client ca 4098 "$CLIENT_EXT" && new_cert rogue otherca 4099 "$CLIENT_EXT"; } ||
  bail "openssl could not make the test certificates"
# skopeo/podman certificate directories: *.crt are CAs, NAME.cert + NAME.key a client pair
mkdir -p "$WORK/cd-ca" "$WORK/cd-client" "$WORK/cd-rogue"
cp "$C/ca.pem" "$WORK/cd-ca/ca.crt"
cp "$C/ca.pem" "$WORK/cd-client/ca.crt"; cp "$C/client.pem" "$WORK/cd-client/client.cert"
cp "$C/client.key" "$WORK/cd-client/client.key"
cp "$C/ca.pem" "$WORK/cd-rogue/ca.crt"; cp "$C/rogue.pem" "$WORK/cd-rogue/client.cert"
cp "$C/rogue.key" "$WORK/cd-rogue/client.key"

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
CFG=$WORK/config.yml
# write_config [TLS_EXTRA_LINES] — the registry's config; lines go under http.tls
write_config() {
  write_registry_config "$CFG" "$WORK/data" "$PORT" "" || return 1
  cat >>"$CFG" <<EOF
  tls:
    certificate: $C/server.pem
    key: $C/server.key
${1:-}
EOF
}
# curl_ca ARGS… — curl trusting our CA; prints the HTTP status
curl_ca() { curl -sS -m 10 -o /dev/null -w '%{http_code}' --cacert "$C/ca.pem" "$@"; }
CLIENT_ARGS=(--cert "$C/client.pem" --key "$C/client.key")
# start_tls KIND — KIND (regfs-registry or docker-registry) serving $CFG; waits for /v2/
start_tls() {
  local i
  if [ "$1" = regfs-registry ]; then
    start_bg "regfs-registry-$((++STARTS))" "$REGFS_REGISTRY" serve "$CFG"
  else
    start_bg "docker-registry-$((++STARTS))" env -u AWS_CA_BUNDLE OTEL_SDK_DISABLED=true \
      REGISTRY_STORAGE_DELETE_ENABLED=true "$DOCKER_REGISTRY" serve "$CFG"
  fi
  REG_PID=$BG_PID; REG_LOG=$WORK/$1-$STARTS.log
  for ((i = 0; i < 150; i++)); do
    [ "$(curl_ca "${CLIENT_ARGS[@]}" "$URL/v2/" 2>/dev/null)" = 200 ] && return 0
    kill -0 "$REG_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "$1 did not answer $URL/v2/ over TLS; its log:"; diag "$(tail -n 20 "$REG_LOG")"
  return 1
}
STARTS=0
# serial_seen — the serial of the certificate a new connection gets (hex, upper case)
serial_seen() {
  openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$C/ca.pem" "${CLIENT_ARGS[@]}" </dev/null 2>/dev/null |
    openssl x509 -noout -serial | sed 's/^serial=//'
}
REF=$(make_image "$WORK/oci" v1 2 200K 3M) || bail make_image
WANT=$(jq -r '.manifests[0].digest' "$WORK/oci/index.json")
sk() { with_timeout 120 skopeo --insecure-policy "$@"; }
# pulled_digest CERTDIR REF — the digest of the manifest skopeo reads back, verifying TLS
pulled_digest() {
  echo "sha256:$(sk inspect --cert-dir "$1" --raw "docker://$2" | sha256sum | cut -d' ' -f1)"
}

# --- TLS, no client certificates --------------------------------------------------
write_config || bail "cannot write the config"
start_tls regfs-registry || bail "regfs-registry did not start with TLS"
check_eq "curl --cacert: GET /v2/" 200 "$(curl_ca "$URL/v2/")"
check_fails "curl without our CA refuses the certificate" curl -sS -m 10 -o /dev/null "$URL/v2/"
check_eq "plain HTTP to the TLS port: 400" 400 \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/")"
check "... logged as a client speaking plain HTTP to the TLS port" \
  wait_for 5 grep -q "plain HTTP to the TLS port" "$REG_LOG"
check "skopeo pushes with --dest-cert-dir (TLS verified)" \
  sk copy -q --dest-cert-dir "$WORK/cd-ca" "$REF" "docker://127.0.0.1:$PORT/team/app:v1"
check_eq "skopeo --cert-dir reads the manifest it pushed" "$WANT" \
  "$(pulled_digest "$WORK/cd-ca" "127.0.0.1:$PORT/team/app:v1")"
check "skopeo pulls with --src-cert-dir" \
  sk copy -q --src-cert-dir "$WORK/cd-ca" "docker://127.0.0.1:$PORT/team/app:v1" "oci:$WORK/back:v1"
check_eq "... the same manifest" "$WANT" "$(jq -r '.manifests[0].digest' "$WORK/back/index.json")"
check_fails "skopeo without our CA refuses the registry" \
  sk inspect --raw "docker://127.0.0.1:$PORT/team/app:v1"
if command -v podman >/dev/null; then
  check "podman pulls with --cert-dir" with_timeout 120 podman pull -q --cert-dir "$WORK/cd-ca" \
    "127.0.0.1:$PORT/team/app:v1"
else
  log "podman is not installed: podman pull not tried"
fi

# regfs mounts the https URL with --ca-cert; another CA: one line, nothing mounted
if [ -x "$REGFS_MOUNT" ] && [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
  MNT=$WORK/mnt
  if start_regfs_mount "$URL" "$MNT" --ca-cert "$C/ca.pem" --cache-dir "$WORK/cache"; then
    check_eq "regfs --ca-cert: ls /" team "$(ls "$MNT")"
    check_eq "regfs --ca-cert: the tag links to the pushed manifest" "../_manifests/$WANT" \
      "$(readlink "$MNT/team/app/_tags/v1")"
    unmount "$MNT"
  else
    fail "regfs --ca-cert mounts $URL"
  fi
  mkdir -p "$WORK/m2"
  out=$(with_timeout 30 "$REGFS_MOUNT" -f --ca-cert "$C/otherca.pem" "$URL" "$WORK/m2" 2>&1); rc=$?
  check_eq "regfs with another CA: exit 1" 1 "$rc"
  check_eq "... with one line" 1 "$(wc -l <<<"$out")"
  check "... that speaks of the certificate" grep -qi "certificate" <<<"$out"
  check_fails "... and nothing is mounted" mountpoint -q "$WORK/m2"
else
  log "regfs or FUSE missing: the mount checks were not run"
fi

# --- SIGHUP: a renewed certificate for new connections; open ones finish ------------
BIG=$(jq -r '.layers | max_by(.size) | .digest' "$WORK/oci/blobs/sha256/${WANT#sha256:}")
check_eq "before the reload: serial 1001" 1001 "$(serial_seen)"
# a transfer slowed to ~10 s across the reload, on a connection opened before it
curl -sS -m 60 --cacert "$C/ca.pem" --limit-rate 300K -o "$WORK/slow.blob" \
  "$URL/v2/team/app/blobs/$BIG" 2>"$WORK/slow.err" &
SLOW=$!
sleep 1
new_cert server ca 8193 "$SERVER_EXT" || bail "openssl could not renew the server certificate"
kill -HUP "$REG_PID"
check "the reload is logged" wait_for 10 grep -q "SIGHUP: TLS: new connections get certificate.*serial 2001" "$REG_LOG"
check_eq "after the reload: a new connection gets serial 2001" 2001 "$(serial_seen)"
wait "$SLOW"; slow_rc=$?
check_eq "the transfer on the connection opened before the reload finished" 0 "$slow_rc"
check_eq "... with the blob's bytes" "$BIG" "sha256:$(sha256sum "$WORK/slow.blob" | cut -d' ' -f1)"
cp "$C/server.pem" "$C/server.good"
echo "not a certificate" >"$C/server.pem"
kill -HUP "$REG_PID"
check "a broken certificate file is refused with an error" \
  wait_for 10 grep -q "TLS certificate unchanged.*server.pem" "$REG_LOG"
check_eq "... and new connections still get serial 2001" 2001 "$(serial_seen)"
cp "$C/server.good" "$C/server.pem"
stop_pid "$REG_PID"

# --- minimumtls ---------------------------------------------------------------------
write_config "    minimumtls: tls1.3" || bail "cannot write the config"
start_tls regfs-registry || bail "regfs-registry did not start with minimumtls tls1.3"
check_fails "minimumtls tls1.3 refuses a TLS 1.2 client" curl -sS -m 10 -o /dev/null \
  --cacert "$C/ca.pem" --tls-max 1.2 "$URL/v2/"
check_eq "... and serves a TLS 1.3 client" 200 "$(curl_ca --tlsv1.3 "$URL/v2/")"
stop_pid "$REG_PID"
write_config "    minimumtls: tls9" || bail "cannot write the config"
out=$(with_timeout 20 "$REGFS_REGISTRY" serve "$CFG" 2>&1); rc=$?
check "an unknown minimumtls is refused naming the key" \
  test $rc -ne 0 -a -n "$(grep 'http.tls.minimumtls' <<<"$out")"

cp "$C/rogue.key" "$WORK/mismatch.key"
write_config || bail "cannot write the config"
sed -i "s|key: $C/server.key|key: $WORK/mismatch.key|" "$CFG"
out=$(with_timeout 20 "$REGFS_REGISTRY" serve "$CFG" 2>&1); rc=$?
check "a key that does not match the certificate stops the start, naming both files" \
  test $rc -ne 0 -a -n "$(grep "http.tls: certificate $C/server.pem with key $WORK/mismatch.key" <<<"$out")"

# --- client certificates (clientcas; clientauth defaults to require-and-verify) ------
MTLS="    clientcas:
      - $C/ca.pem"
write_config "$MTLS" || bail "cannot write the config"
start_tls regfs-registry || bail "regfs-registry did not start with clientcas"
# Under TLS 1.3 the server judges the client certificate after the client's Finished:
# curl, which sends its request at once, sees the alert or (when the server's close
# wins over the request) a reset. openssl s_client -ign_eof sends nothing and reads
# until the server closes, so it always reads the alert.
alert_of() { timeout 10 openssl s_client -ign_eof -connect "127.0.0.1:$PORT" -CAfile "$C/ca.pem" "$@" </dev/null 2>&1; }
out=$(curl -sS -m 10 -o /dev/null --cacert "$C/ca.pem" "$URL/v2/" 2>&1); rc=$?
check "mTLS: no client certificate is refused" test $rc -ne 0
check "... with the TLS alert 'certificate required'" grep -qi "alert certificate required" <<<"$(alert_of)"
out=$(curl -sS -m 10 -o /dev/null --cacert "$C/ca.pem" --cert "$C/rogue.pem" --key "$C/rogue.key" \
  "$URL/v2/" 2>&1); rc=$?
check "mTLS: a certificate from another CA is refused" test $rc -ne 0
check "... with the TLS alert 'unknown ca'" grep -qi "alert unknown ca" \
  <<<"$(alert_of -cert "$C/rogue.pem" -key "$C/rogue.key")"
check_fails "mTLS: our CA's certificate for servers only (extendedKeyUsage serverAuth) is refused" \
  curl -sS -m 10 -o /dev/null --cacert "$C/ca.pem" --cert "$C/server.pem" --key "$C/server.key" "$URL/v2/"
check_eq "mTLS: our client certificate is served" 200 "$(curl_ca "${CLIENT_ARGS[@]}" "$URL/v2/")"
check "mTLS: refusals are logged with the reason" \
  grep -q "no client certificate" "$REG_LOG"
check "... and the other CA's certificate named" grep -q "refused the client certificate.*CN=rogue" "$REG_LOG"
check "mTLS: skopeo pushes with client.cert/client.key in --dest-cert-dir" \
  sk copy -q --dest-cert-dir "$WORK/cd-client" "$REF" "docker://127.0.0.1:$PORT/team/app:v2"
check_eq "mTLS: skopeo reads it back" "$WANT" "$(pulled_digest "$WORK/cd-client" "127.0.0.1:$PORT/team/app:v2")"
check_fails "mTLS: skopeo without a client certificate is refused" \
  sk inspect --cert-dir "$WORK/cd-ca" --raw "docker://127.0.0.1:$PORT/team/app:v2"
check_fails "mTLS: skopeo with the other CA's certificate is refused" \
  sk inspect --cert-dir "$WORK/cd-rogue" --raw "docker://127.0.0.1:$PORT/team/app:v2"
# the client CAs are reloaded too: trusting only the other CA refuses ours
cp "$CFG" "$WORK/config.mtls"
sed -i "s|- $C/ca.pem|- $C/otherca.pem|" "$CFG"
kill -HUP "$REG_PID"
wait_for 10 grep -q "SIGHUP: reloaded" "$REG_LOG"
check_fails "SIGHUP with clientcas changed: our client is refused" \
  curl -sS -m 10 -o /dev/null --cacert "$C/ca.pem" "${CLIENT_ARGS[@]}" "$URL/v2/"
check_eq "... and the other CA's client served" 200 \
  "$(curl_ca --cert "$C/rogue.pem" --key "$C/rogue.key" "$URL/v2/")"
stop_pid "$REG_PID"
cp "$WORK/config.mtls" "$CFG"

# --- Debian's docker-registry (registry:2) with the same file ----------------------
if [ -x "$DOCKER_REGISTRY" ]; then
  if start_tls docker-registry; then
    ok "docker-registry starts with the same config file (mTLS included)"
    check_fails "docker-registry: no client certificate is refused" \
      curl -sS -m 10 -o /dev/null --cacert "$C/ca.pem" "$URL/v2/"
    check_eq "docker-registry: it reads what regfs-registry stored" "$WANT" \
      "$(pulled_digest "$WORK/cd-client" "127.0.0.1:$PORT/team/app:v2")"
    stop_pid "$REG_PID"
  else
    fail "docker-registry starts with the same config file (mTLS included)"
  fi
else
  log "$DOCKER_REGISTRY is not installed: the same-file check was not run"
fi

done_testing
