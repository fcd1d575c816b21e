# shellcheck shell=bash
# Shared helpers for ceph-start.sh / ceph-stop.sh (sourced, not run).
# Daemons are known only through the pid files under $CEPH_DIR/run: nothing
# is killed by name.

CEPH_MARKER=.hypencoder-ceph
CEPH_DAEMONS=(rgw.0 osd.0 mon.a)   # stop order

# pid of daemon NAME if its pid file names a live ceph process, else nothing.
ceph_pid_of() {
  local dir=$1 name=$2 pid comm
  [ -f "$dir/run/$name.pid" ] || return 1
  pid=$(cat "$dir/run/$name.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  # a killed daemon may linger as a zombie until init reaps it: not alive
  [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  case "$comm" in ceph-mon|ceph-osd|radosgw) echo "$pid" ;; *) return 1 ;; esac
}

ceph_all_alive() {
  local dir=$1 n
  for n in "${CEPH_DAEMONS[@]}"; do ceph_pid_of "$dir" "$n" >/dev/null || return 1; done
}

# Stops the daemons of DIR. The cluster is throwaway (memstore, wiped next),
# so the default is SIGKILL: instant. CEPH_STOP_GRACEFUL=1 sends SIGTERM one
# daemon at a time (rgw, osd, mon; ~2 s each, full log flush) and SIGKILLs any
# still alive after 10 s. (SIGTERM to all at once can leave radosgw hanging.)
ceph_stop_daemons() {
  local dir=$1 n pid
  [ -d "$dir/run" ] || return 0
  for n in "${CEPH_DAEMONS[@]}"; do
    pid=$(ceph_pid_of "$dir" "$n") || continue
    if [ "${CEPH_STOP_GRACEFUL:-0}" = 1 ]; then
      echo "[ceph] stopping $n (pid $pid, SIGTERM)" >&2
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do ceph_pid_of "$dir" "$n" >/dev/null || break; sleep 0.1; done
      if ceph_pid_of "$dir" "$n" >/dev/null; then
        echo "[ceph] $n (pid $pid) still alive after 10 s; SIGKILL" >&2
      fi
    else
      echo "[ceph] stopping $n (pid $pid)" >&2
    fi
    kill -KILL "$pid" 2>/dev/null || true
    # wait until it is dead (gone, or a zombie awaiting its reaper)
    for _ in $(seq 1 50); do ceph_pid_of "$dir" "$n" >/dev/null || break; sleep 0.1; done
    rm -f "$dir/run/$n.pid"
  done
}

# Removes DIR, but only if it is ours (marker file) or empty: never a random dir.
ceph_wipe_dir() {
  local dir=$1
  case "$dir" in ""|/|/tmp|/tmp/|"$HOME"|/root|/var|/usr|/etc) echo "[ceph] refusing to wipe '$dir'" >&2; return 1 ;; esac
  [ -e "$dir" ] || return 0
  if [ -f "$dir/$CEPH_MARKER" ] || [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
    rm -rf -- "$dir"
  else
    echo "[ceph] refusing to wipe $dir: not made by ceph-start.sh (no $CEPH_MARKER); remove it or pick another CEPH_DIR" >&2
    return 1
  fi
}
