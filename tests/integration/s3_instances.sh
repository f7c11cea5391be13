#!/bin/bash
# regfs-registry keeps no state of its own, so instances on
# one bucket are interchangeable.
#  - A chunked upload started on instance 1 continues and finishes on
#    instance 2 (curl, chunk by chunk, switching instance between requests).
#  - Two instances behind nginx (round robin, so consecutive requests of one
#    push land on different instances) pass a push and pull of 10 images in
#    parallel; every pulled image is byte-identical.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3_lib.sh"
need_regfs_registry
need_bin skopeo umoci jq nginx
s3_start multi

s3_registry multi || bail "instance 1 did not start"; R1=$REGISTRY_HOST
s3_registry multi || bail "instance 2 did not start"; R2=$REGISTRY_HOST

# --- a chunked upload across instances ------------------------------------------
H=$WORK/h
loc() { tr -d '\r' <"$H" | sed -n 's/^[Ll]ocation: *//p' | tail -n1 | sed 's|^https\?://[^/]*||'; }
head -c $((7 << 20)) /dev/urandom >"$WORK/c1"
head -c $((6 << 20)) /dev/urandom >"$WORK/c2"
head -c 100000 /dev/urandom >"$WORK/c3"
want=$(cat "$WORK/c1" "$WORK/c2" "$WORK/c3" | sha256sum | cut -d' ' -f1)
n1=$(stat -c %s "$WORK/c1"); n2=$(stat -c %s "$WORK/c2")
st=$(curl -s -o /dev/null -D "$H" -w '%{http_code}' -X POST "http://$R1/v2/multi/blob/blobs/uploads/")
check_eq "instance 1 starts an upload" 202 "$st"
L=$(loc)
st=$(curl -s -o /dev/null -D "$H" -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
  -H "Content-Range: 0-$((n1 - 1))" --data-binary @"$WORK/c1" "http://$R1$L")
check_eq "instance 1 takes chunk 1 (7 MiB)" 202 "$st"
L=$(loc)
st=$(curl -s -o /dev/null -D "$H" -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
  -H "Content-Range: $n1-$((n1 + n2 - 1))" --data-binary @"$WORK/c2" "http://$R2$L")
check_eq "instance 2 takes chunk 2 (6 MiB) of the same upload" 202 "$st"
check_eq "instance 2 reports the upload's full range" "0-$((n1 + n2 - 1))" \
  "$(tr -d '\r' <"$H" | sed -n 's/^[Rr]ange: *//p')"
L=$(loc)
st=$(curl -s -o /dev/null -D "$H" -w '%{http_code}' "http://$R1$L")
check_eq "instance 1 sees the upload's progress" "204 0-$((n1 + n2 - 1))" \
  "$st $(tr -d '\r' <"$H" | sed -n 's/^[Rr]ange: *//p')"
sep='?'; case $L in *\?*) sep='&' ;; esac
st=$(curl -s -o "$WORK/put.out" -D "$H" -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
  --data-binary @"$WORK/c3" "http://$R2$L${sep}digest=sha256:$want")
check_eq "instance 2 finishes it with the last chunk and the digest" 201 "$st"
check_eq "instance 1 serves the blob; its bytes hash to the digest" "$want" \
  "$(curl -sL "http://$R1/v2/multi/blob/blobs/sha256:$want" | sha256sum | cut -d' ' -f1)"
check_eq "no multipart upload left in the bucket" "" "$(s3tool uploads multi)"

# --- nginx round robin, 10 parallel pushes and pulls ------------------------------
LB_PORT=$(free_port)
mkdir -p "$WORK/nginx"
userline=""; [ "$(id -u)" = 0 ] && userline="user root;"
cat >"$WORK/nginx/nginx.conf" <<NGINX
$userline
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream registries { server $R1; server $R2; }
  server {
    listen 127.0.0.1:$LB_PORT;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    location / {
      proxy_pass http://registries;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_read_timeout 300s;
    }
  }
}
NGINX
start_bg nginx nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
wait_http "http://127.0.0.1:$LB_PORT/v2/" 15 || bail "nginx did not start"
LB=127.0.0.1:$LB_PORT

for i in $(seq 1 10); do
  make_image "$WORK/oci" "i$i" 2 12M 300K >/dev/null || bail "make_image i$i"
  skopeo_copy "oci:$WORK/oci:i$i" "dir:$WORK/src$i" || bail "skopeo oci->dir i$i"
done
pids=()
for i in $(seq 1 10); do skopeo_copy "oci:$WORK/oci:i$i" "docker://$LB/lb/img$i:t" 2>"$WORK/push$i.err" & pids+=($!); done
bad=0; for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
check_eq "10 parallel pushes through the round-robin balancer succeed" 0 "$bad"
[ "$bad" = 0 ] || diag "$(cat "$WORK"/push*.err | tail -n 20)"
pids=()
for i in $(seq 1 10); do skopeo_copy "docker://$LB/lb/img$i:t" "dir:$WORK/got$i" 2>"$WORK/pull$i.err" & pids+=($!); done
bad=0; for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
check_eq "10 parallel pulls through the balancer succeed" 0 "$bad"
same=0; for i in $(seq 1 10); do diff -r "$WORK/src$i" "$WORK/got$i" >/dev/null 2>&1 && same=$((same + 1)); done
check_eq "all 10 pulled images are byte-identical to what was pushed" 10 "$same"
hits1=$(grep -c " $R1 \| $R1\$" "$WORK/nginx/access.log" 2>/dev/null || true)
check_eq "catalog through either instance lists the 10 repositories" 10 \
  "$(curl -s "http://$R2/v2/_catalog" | jq '[.repositories[] | select(startswith("lb/"))] | length')"
check_eq "no upload state left under _uploads" "" "$(s3tool ls multi | grep /_uploads/)"
check_eq "no multipart upload left in the bucket" "" "$(s3tool uploads multi)"
done_testing
