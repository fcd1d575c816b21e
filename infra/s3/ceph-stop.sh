#!/usr/bin/env bash
# Stops the daemons started by ceph-start.sh (via their pid files) and removes
# $CEPH_DIR (default /tmp/hypencoder-ceph). Safe to run when nothing is running.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CEPH_DIR="${CEPH_DIR:-/tmp/hypencoder-ceph}"
# shellcheck source=ceph-common.sh
. "$HERE/ceph-common.sh"
ceph_stop_daemons "$CEPH_DIR"
ceph_wipe_dir "$CEPH_DIR"
echo "[ceph-stop] stopped; $CEPH_DIR removed" >&2
