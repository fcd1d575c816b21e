#!/usr/bin/env bash
# Starts a throwaway one-node Ceph cluster (1 mon, 1 memstore OSD, 1 radosgw)
# on loopback and creates an S3 user with fixed test credentials. No systemd:
# daemons run in the background with pid files and logs under $CEPH_DIR.
#
#   eval "$(infra/s3/ceph-start.sh)"     # progress on stderr, `export` lines on stdout
#
# Env (all optional):
#   CEPH_DIR              state dir (default /tmp/hypencoder-ceph); wiped on a fresh start
#   S3_PORT               radosgw port on 127.0.0.1 (default 7480)
#   CEPH_MON_PORT         mon msgr2 port on 127.0.0.1 (default 3300)
#   S3_ACCESS_KEY_ID      default hypencoder-test
#   S3_SECRET_ACCESS_KEY  default hypencoder-test-secret
#   S3_REGION             region to sign with (default us-east-1; radosgw accepts any)
#   S3_BUCKET             if set, this bucket is created (owned by the test user)
#   CEPH_FRESH=1          always recreate, even if a matching cluster is already up
#   CEPH_START_TIMEOUT    seconds to wait for each step (default 60)
#
# Idempotent: if the cluster in $CEPH_DIR is already up with the same port and
# keys, it is reused (with whatever buckets earlier runs left: CEPH_FRESH=1
# for an empty one); otherwise old daemons (pid files) are stopped, the dir
# wiped and a new cluster made. Data lives in memory (memstore): a restart
# loses every object, which is what tests want.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CEPH_DIR="${CEPH_DIR:-/tmp/hypencoder-ceph}"
S3_PORT="${S3_PORT:-7480}"
CEPH_MON_PORT="${CEPH_MON_PORT:-3300}"
S3_ACCESS_KEY_ID="${S3_ACCESS_KEY_ID:-hypencoder-test}"
S3_SECRET_ACCESS_KEY="${S3_SECRET_ACCESS_KEY:-hypencoder-test-secret}"
S3_REGION="${S3_REGION:-us-east-1}"
S3_BUCKET="${S3_BUCKET:-}"
TIMEOUT="${CEPH_START_TIMEOUT:-60}"
S3_UID=hypencoder

# shellcheck source=ceph-common.sh
. "$HERE/ceph-common.sh"

T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}'; }
log() { echo "[ceph-start +$(elapsed)] $*" >&2; }
STARTED=0   # set once we own daemons: a failure then stops them (logs are kept)
die() {
  echo "[ceph-start] ERROR: $1" >&2
  shift
  for f in "$@"; do
    if [ -f "$f" ]; then echo "----- tail of $f -----" >&2; tail -n 40 "$f" >&2; fi
  done
  if [ "$STARTED" = 1 ]; then
    ceph_stop_daemons "$CEPH_DIR" || true
    echo "[ceph-start] daemons stopped; logs kept in $CEPH_DIR/log (infra/s3/ceph-stop.sh removes them)" >&2
  fi
  exit 1
}

for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool uuidgen curl; do
  command -v "$b" >/dev/null 2>&1 || die "'$b' not found: run infra/s3/ceph-install.sh first"
done

CONF="$CEPH_DIR/ceph.conf"
STATE="$CEPH_DIR/hypencoder-ceph.state"
WANT_STATE="port=$S3_PORT mon=$CEPH_MON_PORT key=$S3_ACCESS_KEY_ID secret=$(printf %s "$S3_SECRET_ACCESS_KEY" | md5sum | cut -c1-12)"
ENDPOINT="http://127.0.0.1:$S3_PORT"
MON_LOG="$CEPH_DIR/log/ceph-mon.a.log"
OSD_LOG="$CEPH_DIR/log/ceph-osd.0.log"
RGW_LOG="$CEPH_DIR/log/ceph-client.rgw.0.log"

# curl's --aws-sigv4 (curl >= 7.75; Debian 12 ships 7.88) signs with the
# empty-body hash but does not send x-amz-content-sha256, which S3/radosgw
# require (else SignatureDoesNotMatch): send it, so it is signed too.
SIGV4=(--aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY_ID:$S3_SECRET_ACCESS_KEY"
       -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

print_env() {
  local kv=(
    S3_ENDPOINT "$ENDPOINT" S3_REGION "$S3_REGION"
    S3_ACCESS_KEY_ID "$S3_ACCESS_KEY_ID" S3_SECRET_ACCESS_KEY "$S3_SECRET_ACCESS_KEY"
    S3_FORCE_PATH_STYLE true
    AWS_ACCESS_KEY_ID "$S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY "$S3_SECRET_ACCESS_KEY"
    AWS_REGION "$S3_REGION" CEPH_DIR "$CEPH_DIR" CEPH_CONF "$CONF"
  )
  if [ -n "$S3_BUCKET" ]; then kv+=(S3_BUCKET "$S3_BUCKET"); fi
  local i
  for ((i = 0; i < ${#kv[@]}; i += 2)); do printf 'export %s=%q\n' "${kv[i]}" "${kv[i+1]}"; done
}

s3_answers() {
  curl -fsS --max-time 3 "$ENDPOINT/" 2>/dev/null | grep -q ListAllMyBucketsResult
}

ensure_bucket() {
  [ -n "$S3_BUCKET" ] || return 0
  # radosgw-admin cannot create buckets: a SigV4-signed PUT instead.
  local code
  code=$(curl -sS -o "$CEPH_DIR/log/bucket-create.out" -w '%{http_code}' --max-time 10 \
    "${SIGV4[@]}" -X PUT "$ENDPOINT/$S3_BUCKET") || true
  case "$code" in
    200) log "bucket $S3_BUCKET ready" ;;
    409) log "bucket $S3_BUCKET already exists" ;;
    *) die "creating bucket $S3_BUCKET answered HTTP $code" "$CEPH_DIR/log/bucket-create.out" "$RGW_LOG" ;;
  esac
}

# ---- reuse a running cluster if it matches --------------------------------
if [ "${CEPH_FRESH:-0}" != 1 ] && [ -f "$STATE" ] && [ "$(cat "$STATE")" = "$WANT_STATE" ] \
   && ceph_all_alive "$CEPH_DIR" && s3_answers; then
  log "cluster in $CEPH_DIR already running on $ENDPOINT; reusing it"
  ensure_bucket
  print_env
  exit 0
fi

# ---- stop and wipe anything stale -----------------------------------------
ceph_stop_daemons "$CEPH_DIR"
ceph_wipe_dir "$CEPH_DIR"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_busy "$S3_PORT" && die "port $S3_PORT on 127.0.0.1 is already in use (set S3_PORT)"
port_busy "$CEPH_MON_PORT" && die "port $CEPH_MON_PORT on 127.0.0.1 is already in use (set CEPH_MON_PORT)"

mkdir -p "$CEPH_DIR"/{mon,osd,rgw,run,log,crash}
STARTED=1
echo "made by infra/s3/ceph-start.sh; safe to delete" > "$CEPH_DIR/$CEPH_MARKER"

FSID=$(uuidgen)
OSD_UUID=$(uuidgen)

cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon initial members = a
mon host = v2:127.0.0.1:$CEPH_MON_PORT
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
# radosgw/radosgw-admin default to ms_mon_client_mode=secure, which auth "none"
# cannot provide (the mon connection fails with EACCES/-13): use crc.
ms mon client mode = crc
ms client mode = crc
keyring = $CEPH_DIR/keyring
run dir = $CEPH_DIR/run
admin socket = $CEPH_DIR/run/\$cluster-\$name.asok
pid file = $CEPH_DIR/run/\$name.daemon.pid
log file = $CEPH_DIR/log/\$cluster-\$name.log
crash dir = $CEPH_DIR/crash
log to stderr = false
err to stderr = true
mon cluster log file = $CEPH_DIR/log/\$cluster.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# a one-node throwaway cluster: commit map changes fast (pool creation by rgw)
paxos propose interval = 0.05
paxos min wait = 0.01
osd objectstore = memstore
memstore device bytes = 4294967296
osd memory target = 1073741824
osd max object name len = 460
osd max object namespace len = 64

[client]
# per-process sockets, so radosgw-admin/ceph never clash with the running radosgw
admin socket = $CEPH_DIR/run/\$cluster-\$name.\$pid.\$cctid.asok

[mon]
mon data = $CEPH_DIR/mon/ceph-\$id

[osd]
osd data = $CEPH_DIR/osd/ceph-\$id
osd crush update on start = true
osd op num shards = 2
osd op num threads per shard = 1

[client.rgw.0]
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw data = $CEPH_DIR/rgw
rgw thread pool size = 64
rgw enable usage log = false
EOF
log "wrote $CONF (fsid $FSID)"

# A daemon in the background, detached from our stdout (so `eval "$(...)"`
# returns) and from our session; its pid in run/NAME.pid.
spawn() {
  local name=$1; shift
  setsid "$@" -f </dev/null >>"$CEPH_DIR/log/$name.out" 2>&1 &
  echo $! > "$CEPH_DIR/run/$name.pid"
  disown $!   # no "Killed" job notices if a failed start stops it
}

wait_for() { # desc, daemon (mon.a|osd.0|rgw.0), command...
  local desc=$1 d=$2; shift 2
  local logf
  case "$d" in mon.a) logf=$MON_LOG ;; osd.0) logf=$OSD_LOG ;; *) logf=$RGW_LOG ;; esac
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    if ! ceph_pid_of "$CEPH_DIR" "$d" >/dev/null; then
      die "$d exited while waiting for $desc" "$logf" "$CEPH_DIR/log/$d.out"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${TIMEOUT}s waiting for $desc" "$logf" "$CEPH_DIR/log/$d.out"
    sleep 0.3
  done
}
CEPH=(ceph -c "$CONF" --connect-timeout 5)

# ---- mon --------------------------------------------------------------------
ceph-authtool --create-keyring "$CEPH_DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$CEPH_DIR/keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$CEPH_MON_PORT]" "$CEPH_DIR/monmap" >/dev/null 2>&1 \
  || die "monmaptool failed"
ceph-mon -c "$CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap" --keyring "$CEPH_DIR/keyring" \
  >"$CEPH_DIR/log/mon.mkfs.out" 2>&1 || die "ceph-mon --mkfs failed" "$CEPH_DIR/log/mon.mkfs.out" "$MON_LOG"
spawn mon.a ceph-mon -c "$CONF" -i a
log "mon started (pid $(cat "$CEPH_DIR/run/mon.a.pid")), waiting for quorum"
wait_for "mon quorum" mon.a "${CEPH[@]}" mon stat

# ---- osd --------------------------------------------------------------------
OSD_ID=$("${CEPH[@]}" osd new "$OSD_UUID" 2>"$CEPH_DIR/log/osd.new.out") \
  || die "ceph osd new failed" "$CEPH_DIR/log/osd.new.out" "$MON_LOG"
[ "$OSD_ID" = 0 ] || die "expected osd id 0, got '$OSD_ID'"
mkdir -p "$CEPH_DIR/osd/ceph-0"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$CEPH_DIR/log/osd.mkfs.out" 2>&1 \
  || die "ceph-osd --mkfs failed" "$CEPH_DIR/log/osd.mkfs.out" "$OSD_LOG"
spawn osd.0 ceph-osd -c "$CONF" -i 0
log "osd started (pid $(cat "$CEPH_DIR/run/osd.0.pid")), waiting for it to be up"
osd_up() { "${CEPH[@]}" osd dump 2>/dev/null | grep -q '^osd\.0 up .* in '; }
wait_for "osd.0 up+in" osd.0 osd_up

# ---- radosgw ----------------------------------------------------------------
spawn rgw.0 radosgw -c "$CONF" -n client.rgw.0
log "radosgw started (pid $(cat "$CEPH_DIR/run/rgw.0.pid")), waiting for $ENDPOINT"
wait_for "radosgw answering on $ENDPOINT" rgw.0 s3_answers

# ---- S3 user ------------------------------------------------------------------
radosgw-admin -c "$CONF" -n client.rgw.0 user create --uid "$S3_UID" --display-name "Hypencoder tests" \
  --access-key "$S3_ACCESS_KEY_ID" --secret-key "$S3_SECRET_ACCESS_KEY" \
  >"$CEPH_DIR/log/user-create.out" 2>&1 \
  || die "radosgw-admin user create failed" "$CEPH_DIR/log/user-create.out"
log "S3 user '$S3_UID' created (access key $S3_ACCESS_KEY_ID)"

# A signed request proves the user and keys work end to end (rgw caches users
# briefly, so retry until the new one is visible).
signed_list() {
  curl -fsS --max-time 3 "${SIGV4[@]}" "$ENDPOINT/" | grep -q "<ID>$S3_UID</ID>"
}
wait_for "a SigV4-signed request to succeed" rgw.0 signed_list
ensure_bucket

echo "$WANT_STATE" > "$STATE"
log "S3 ready at $ENDPOINT"
print_env
