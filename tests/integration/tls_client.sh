#!/bin/bash
# tls_client.sh — regfs against an https registry (docker-registry with http.tls,
# certificates made here with openssl): verified by default; --ca-cert mounts; without it
# (or with the wrong CA) one line that names the certificate, the verify error and
# --ca-cert, exit 1, nothing mounted; --insecure mounts; a registry that wants a client
# certificate (clientcas) mounts with --client-cert/--client-key, and without them says so.
# What is listed is compared with the registry's own API (curl --cacert).
. "$(dirname "$0")/lib.sh"
need_regfs_mount
need_bin openssl skopeo umoci jq "$DOCKER_REGISTRY"

mounts() {  # mounts NAME URL MNT OPTIONS… — start_regfs_mount as a check (in this shell)
  local name=$1; shift
  if start_regfs_mount "$@"; then ok "$name"; else fail "$name"; fi
}
one_line_exit1() {  # one_line_exit1 NAME PATTERN CMD… — exit 1, one line matching PATTERN
  local name=$1 pat=$2 out rc; shift 2
  out=$(with_timeout 60 "$@" 2>&1); rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qE -e "$pat" <<<"$out"; then ok "$name"; log "$out"
  else fail "$name" "exit $rc, output:"; diag "$out"; fi
}

# --- certificates: a CA, the server's (for 127.0.0.1), another CA, a client CA + client
C=$WORK/certs; mkdir -p "$C"
mkca() {  # mkca NAME CN
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" \
    -keyout "$C/$1.key" -out "$C/$1.pem" 2>/dev/null
}
mkcert() {  # mkcert NAME CN CA [EXT]
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$C/$1.key" -out "$C/$1.csr" 2>/dev/null &&
  openssl x509 -req -in "$C/$1.csr" -CA "$C/$3.pem" -CAkey "$C/$3.key" -CAcreateserial -days 2 \
    ${4:+-extfile "$4"} -out "$C/$1.pem" 2>/dev/null
}
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$C/server.ext"
printf 'extendedKeyUsage=clientAuth\n' >"$C/client.ext"
mkca ca "regfs-test-ca" && mkca other "regfs-other-ca" && mkca clientca "regfs-client-ca" &&
  mkcert server "regfs-test-registry" ca "$C/server.ext" &&
  mkcert client "regfs-test-client" clientca "$C/client.ext" || bail "openssl failed"

TLS_YAML="  tls:
    certificate: $C/server.pem
    key: $C/server.key"
# start_tls_registry DIR [clientcas] — docker-registry serving https on a free port
start_tls_registry() {
  local port; port=$(free_port) extra=$TLS_YAML
  [ "${2:-}" = clientcas ] && extra+="
    clientcas:
      - $C/clientca.pem"
  mkdir -p "$1"
  cat >"$WORK/tls-$port.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $1
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$extra
EOF
  start_bg "docker-registry-tls-$port" env -u AWS_CA_BUNDLE OTEL_SDK_DISABLED=true \
    "$DOCKER_REGISTRY" serve "$WORK/tls-$port.yml"
  REGISTRY_PID=$BG_PID; REGISTRY_HOST=127.0.0.1:$port; REGISTRY_URL=https://$REGISTRY_HOST
  wait_for 15 bash -c "echo | openssl s_client -connect $REGISTRY_HOST </dev/null >/dev/null 2>&1"
}

# --- server TLS --------------------------------------------------------------------
start_tls_registry "$WORK/data" || bail "the TLS docker-registry did not start"
make_image "$WORK/oci" v1 1 20K >/dev/null || bail make_image
mkdir -p "$WORK/certsd"; cp "$C/ca.pem" "$WORK/certsd/ca.crt"
check "skopeo pushes over https (trusting our CA)" skopeo_copy --dest-cert-dir "$WORK/certsd" \
  oci:"$WORK/oci":v1 "docker://$REGISTRY_HOST/team/app:v1"
check "skopeo pushes a second tag" skopeo_copy --dest-cert-dir "$WORK/certsd" \
  oci:"$WORK/oci":v1 "docker://$REGISTRY_HOST/team/app:v2"
API_TAGS=$(curl -s --cacert "$C/ca.pem" "$REGISTRY_URL/v2/team/app/tags/list" | jq -r '.tags[]' | sort | paste -sd' ')
[ -n "$API_TAGS" ] || bail "the registry's API lists no tags"

mkdir -p "$WORK/m0"
one_line_exit1 "no --ca-cert: one line naming the certificate, why, and --ca-cert; exit 1" \
  'regfs-test-registry.*regfs-test-ca.*(unable to get local issuer|self.signed|verify).*--ca-cert <CA file>' \
  env HOME="$WORK" "$REGFS_MOUNT" -f "$REGISTRY_URL" "$WORK/m0"
check_fails "... and nothing is mounted" mountpoint -q "$WORK/m0"
one_line_exit1 "the wrong CA: one line saying the CA in --ca-cert did not sign it; exit 1" \
  'regfs-test-registry.*--ca-cert did not sign it' \
  env HOME="$WORK" "$REGFS_MOUNT" -f --ca-cert "$C/other.pem" "$REGISTRY_URL" "$WORK/m0"
check_fails "... and nothing is mounted" mountpoint -q "$WORK/m0"
one_line_exit1 "a host name the certificate is not for: one line saying so; exit 1" \
  "regfs-test-registry.*(subject name|host name).*use the host name the certificate was issued for" \
  env HOME="$WORK" "$REGFS_MOUNT" -f --ca-cert "$C/ca.pem" "https://localhost:${REGISTRY_HOST#*:}" "$WORK/m0"
one_line_exit1 "an unreadable --ca-cert file: one line naming it; exit 1" \
  "ca-cert $WORK/nope.pem cannot be used" \
  env HOME="$WORK" "$REGFS_MOUNT" -f --ca-cert "$WORK/nope.pem" "$REGISTRY_URL" "$WORK/m0"

mounts "--ca-cert: regfs mounts the https registry" \
  "$REGISTRY_URL" "$WORK/m1" --ca-cert "$C/ca.pem" --cache-dir "$WORK/cache1"
check_eq "--ca-cert: ls _tags = the registry's tags/list" "$API_TAGS" "$(ls "$WORK/m1/team/app/_tags" | paste -sd' ')"
unmount "$WORK/m1"; stop_pid "$MOUNT_PID"

mounts "--insecure: regfs mounts without verifying" \
  "$REGISTRY_URL" "$WORK/m2" --insecure --cache-dir "$WORK/cache2"
check_eq "--insecure: ls _tags = the registry's tags/list" "$API_TAGS" "$(ls "$WORK/m2/team/app/_tags" | paste -sd' ')"
unmount "$WORK/m2"; stop_pid "$MOUNT_PID"
stop_pid "$REGISTRY_PID"

# --- mTLS: the registry wants a client certificate signed by clientca ----------------
start_tls_registry "$WORK/data" clientcas || bail "the mTLS docker-registry did not start"
API_TAGS2=$(curl -s --cacert "$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key" \
  "$REGISTRY_URL/v2/team/app/tags/list" | jq -r '.tags[]' | sort | paste -sd' ')
check_eq "mTLS registry: curl with the client certificate lists the tags" "$API_TAGS" "$API_TAGS2"
one_line_exit1 "mTLS without --client-cert: one line saying to pass it; exit 1" \
  'client certificate.*--client-cert FILE --client-key FILE' \
  env HOME="$WORK" "$REGFS_MOUNT" -f --ca-cert "$C/ca.pem" "$REGISTRY_URL" "$WORK/m0"
check_fails "... and nothing is mounted" mountpoint -q "$WORK/m0"
one_line_exit1 "mTLS with a key file that is not a key: one line naming the files; exit 1" \
  "client-cert .*client.pem / --client-key .*server.csr cannot be used" \
  env HOME="$WORK" "$REGFS_MOUNT" -f --ca-cert "$C/ca.pem" --client-cert "$C/client.pem" \
  --client-key "$C/server.csr" "$REGISTRY_URL" "$WORK/m0"
mounts "mTLS with --client-cert/--client-key: regfs mounts" \
  "$REGISTRY_URL" "$WORK/m3" --ca-cert "$C/ca.pem" \
  --client-cert "$C/client.pem" --client-key "$C/client.key" --cache-dir "$WORK/cache3"
check_eq "mTLS: ls _tags = the registry's tags/list" "$API_TAGS" "$(ls "$WORK/m3/team/app/_tags" | paste -sd' ')"
D=$(curl -s --cacert "$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key" -o /dev/null -D - \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$REGISTRY_URL/v2/team/app/manifests/v1" |
  tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
check_eq "mTLS: readlink of a tag = the registry's Docker-Content-Digest" "../_manifests/$D" \
  "$(readlink "$WORK/m3/team/app/_tags/v1")"
unmount "$WORK/m3"; stop_pid "$MOUNT_PID"

done_testing
