#!/usr/bin/env bash
# Installs Debian's Ceph packages needed for a one-node S3 (radosgw) test cluster.
# Idempotent: does nothing (no apt-get update) when every binary is already present.
# Usage: sudo infra/s3/ceph-install.sh      (run as root; progress goes to stderr)
set -euo pipefail

log() { echo "[ceph-install] $*" >&2; }

PKGS=(ceph-mon ceph-osd radosgw ceph-common)
BINS=(ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool uuidgen curl)

missing=()
for b in "${BINS[@]}"; do
  command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
if [ "${#missing[@]}" -eq 0 ]; then
  log "already installed: $(ceph-mon --version 2>/dev/null | head -1)"
  exit 0
fi
log "missing: ${missing[*]}"

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    log "must run as root (or have sudo)"; exit 1
  fi
else
  SUDO=
fi

export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s)
log "apt-get update"
$SUDO apt-get update -qq >&2
log "apt-get install ${PKGS[*]} uuid-runtime curl"
# Ceph's postinst scripts call deb-systemd-invoke/invoke-rc.d; without a running
# systemd those are no-ops, so this works in containers too.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${PKGS[@]}" uuid-runtime curl >&2
log "done in $(( $(date +%s) - t0 ))s: $(ceph-mon --version | head -1)"
