#!/bin/bash
# ceph.sh — a throw-away single-node Ceph cluster with a RADOS Gateway (S3) on
# loopback, for the S3 tests. One monitor, one OSD on memstore (RAM, no block
# device; OBJECTSTORE=bluestore for a sparse file instead), no mgr, one radosgw.
#
#   ceph.sh start DIR [BUCKET...]   start in DIR (wiped first); writes DIR/env
#   ceph.sh stop DIR [--wipe]       stop the daemons started in DIR
#   ceph.sh rgw-stop DIR            stop only radosgw (outage tests)
#   ceph.sh rgw-start DIR           restart radosgw on the same port
#
# DIR/env is a shell fragment to source: S3_ENDPOINT, S3_AK, S3_SK, S3_REGION,
# RGW_PORT, CEPH_CONF. Ports are free loopback ports picked at start (mon v2,
# mon v1, rgw), so several clusters can run side by side.
#
# Settings that matter (measured on this machine, see
# /work/shared/tools/ceph-s3-up.sh): pool size 1 and no autoscaler so PGs go
# active with one OSD; "paxos propose interval = 0.1" makes the pool creations
# radosgw does at first start ~4x faster; memstore avoids mkfs of a 10 GB file.
# The whole start takes a few seconds.
set -euo pipefail

S3_AK=${S3_AK:-TESTACCESSKEY0000000}
S3_SK=${S3_SK:-TESTSECRETKEY000000000000000000000000000}
OBJECTSTORE=${OBJECTSTORE:-memstore}

die() { echo "ceph.sh: $*" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (bind to port 0 and let the kernel choose).
free_port() {
	python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# waitfor SECONDS WHAT CMD...: polls CMD every 0.1 s, bounded.
waitfor() {
	local n=$1 what=$2; shift 2
	local i
	for ((i = 0; i < n * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "ceph.sh: timeout (${n}s) waiting for $what; logs in $D/log:" >&2
	tail -n 20 "$D"/log/*.log >&2 2>/dev/null || true
	return 1
}

stop_daemon() {  # stop_daemon NAME [SIGNAL]
	local f=$D/$1.pid p i
	[ -f "$f" ] || return 0
	p=$(cat "$f")
	kill -s "${2:-TERM}" "$p" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$p" 2>/dev/null || true
	rm -f "$f"
}

# An S3 request with an empty body signed by curl's own SigV4 (used only to
# create buckets here; the driver under test has its own signer). RGW insists
# on x-amz-content-sha256, which curl 7.88 does not add by itself: this is the
# SHA-256 of the empty string.
s3curl() {
	curl -sS --fail-with-body --max-time 30 --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$S3_AK:$S3_SK" \
		-H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
		"$@"
}

start() {
	[ -n "$D" ] || die "usage: ceph.sh start DIR [BUCKET...]"
	[ -d "$D" ] && { stop --wipe; rm -rf "$D"; }
	mkdir -p "$D"/{mon.a,osd.0,rgw.a,run,log}
	D=$(cd "$D" && pwd)
	local fsid mon2 mon1 rgw conf
	fsid=$(uuidgen)
	mon2=$(free_port); mon1=$(free_port); rgw=$(free_port)
	while [ "$mon1" = "$mon2" ]; do mon1=$(free_port); done
	while [ "$rgw" = "$mon2" ] || [ "$rgw" = "$mon1" ]; do rgw=$(free_port); done
	conf=$D/ceph.conf
	cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
public network = 127.0.0.0/8
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/\$name.keyring
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
run dir = $D/run
pid file = $D/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
auth allow insecure global id reclaim = false
osd crush chooseleaf type = 0
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $D/mon.\$id
mon cluster log file = $D/log/cluster.log
paxos propose interval = 0.1

[osd]
osd data = $D/osd.\$id
osd objectstore = $OBJECTSTORE
osd memory target = 1073741824
bluestore block path = $D/osd.\$id/block.file
bluestore block create = true
bluestore block size = 10737418240
bluestore block db create = false
bluestore block wal create = false
memstore device bytes = ${MEMSTORE_BYTES:-4294967296}
osd max object name len = 460
osd max object namespace len = 64

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw
rgw data = $D/rgw.a
log file = $D/log/rgw.a.log
rgw dns name = 127.0.0.1
# reclaim deleted objects' data within seconds, not hours: tests and the
# benchmark write and delete GBs on a RAM-sized memstore
rgw gc obj min wait = 5
rgw gc processor period = 5
rgw gc processor max time = 5
CONF
	export CEPH_CONF=$conf
	local C="ceph -c $conf --connect-timeout 20"

	ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool --create-keyring "$D/client.admin.keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
	ceph-authtool "$D/mon.keyring" --import-keyring "$D/client.admin.keyring" >/dev/null
	cp "$D/mon.keyring" "$D/mon.a.keyring"
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" \
		"$D/monmap" >/dev/null
	ceph-mon -c "$conf" --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring" \
		>"$D/log/mon-mkfs.out" 2>&1
	ceph-mon -c "$conf" -i a
	waitfor 30 "ceph monitor quorum" $C -s

	local uuid id
	uuid=$(uuidgen)
	id=$($C osd new "$uuid")
	ceph-osd -c "$conf" -i "$id" --mkfs --mkkey --osd-uuid "$uuid" --no-mon-config \
		>"$D/log/osd-mkfs.out" 2>&1
	$C auth add "osd.$id" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
		-i "$D/osd.$id.keyring" >/dev/null 2>&1
	ceph-osd -c "$conf" -i "$id" >/dev/null 2>&1
	waitfor 60 "ceph osd up" bash -c "$C osd stat | grep -q '1 up'"

	$C auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' mgr 'allow rw' \
		-o "$D/client.rgw.a.keyring" >/dev/null 2>&1
	radosgw -c "$conf" -n client.rgw.a
	waitfor 90 "radosgw on 127.0.0.1:$rgw" curl -sf -o /dev/null "http://127.0.0.1:$rgw/"
	radosgw-admin -c "$conf" user create --uid=test --display-name="S3 test user" \
		--access-key="$S3_AK" --secret-key="$S3_SK" >"$D/user.json" 2>"$D/log/radosgw-admin.err"

	cat >"$D/env" <<ENV
S3_ENDPOINT=http://127.0.0.1:$rgw
S3_AK=$S3_AK
S3_SK=$S3_SK
S3_REGION=us-east-1
RGW_PORT=$rgw
CEPH_CONF=$conf
ENV
	local b
	for b in "$@"; do
		# The user was just created: retry briefly until rgw knows it.
		if ! waitfor 20 "bucket $b" s3curl -X PUT "http://127.0.0.1:$rgw/$b"; then
			s3curl -X PUT "http://127.0.0.1:$rgw/$b" >&2 # shows S3's error (e.g. InvalidBucketName)
			return 1
		fi
	done
	cat "$D/env"
}

stop() {  # stop [--wipe]: with --wipe the daemons are killed outright, since
	  # their graceful shutdown (a memstore OSD saves its data) takes seconds
	  # for state about to be deleted
	[ -d "$D" ] || return 0
	local sig=TERM
	[ "${1:-}" = "--wipe" ] && sig=KILL
	stop_daemon client.rgw.a $sig
	stop_daemon osd.0 $sig
	stop_daemon mon.a $sig
}

rgw_start() {
	# shellcheck disable=SC1091
	. "$D/env"
	CEPH_CONF=$D/ceph.conf radosgw -c "$D/ceph.conf" -n client.rgw.a
	waitfor 90 "radosgw on 127.0.0.1:$RGW_PORT" curl -sf -o /dev/null "http://127.0.0.1:$RGW_PORT/"
}

cmd=${1:-}; D=${2:-}
[ -n "$D" ] || die "usage: ceph.sh start|stop|rgw-stop|rgw-start DIR"
shift 2
case $cmd in
start) start "$@" ;;
stop) stop "${1:-}"; [ "${1:-}" = "--wipe" ] && rm -rf "$D"; true ;;
rgw-stop) stop_daemon client.rgw.a ;;
rgw-start) rgw_start ;;
*) die "unknown command $cmd (start|stop|rgw-stop|rgw-start)" ;;
esac
