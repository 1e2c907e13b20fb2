#!/usr/bin/env bash
# Proves that the production image (deploy/Dockerfile) builds and runs, on a
# machine with podman but no container engine that can run it (no Docker
# daemon, no registry access, `podman run` refused):
#
#   1. base     a local debian:12 from debootstrap, unless one exists
#   2. build    podman build of deploy/Dockerfile (nice -n 10) as lotse:check
#   3. pki      a dev PKI (tools/dev-pki.sh) at /etc/lotse/tls in the image,
#               root:10001 0440 as the manifests' projected Secrets
#   4. prepare  the image's files, mounted from a container: read-only root
#               as the manifests' readOnlyRootFilesystem, writable
#               /var/lib/lotse/data and /tmp, /proc, /dev; checks of the
#               image configuration, users, permissions and that every
#               binary finds its shared libraries (ldd in the image)
#   5. start    the four services from the image's binaries as uid 10001,
#               wired as `tools/lotse.sh run` wires them (events, identity
#               target, audit peers), each with its SQLite database under
#               /var/lib/lotse/data, on free loopback ports; healthy through
#               the plaintext --health_listen port and lotse_health_probe
#   6. calls    one mutual-TLS call per service with the image's lotsectl:
#               lotse-admin lists the agencies (identity) and registers the
#               data-protection officer dsb-nrw, whose `audit head` every
#               service then answers (cases, courses and placement once
#               identity's event has reached them)
#   7. stop     SIGTERM to each service; each must exit with status 0
#
# and prints PASS/FAIL per check, the image size and the time of each phase.
# Exit status 0 when every check passed, 1 otherwise, 2 on a usage error.
#
# Usage: deploy/check-image.sh [--rebuild-base] [--no-build] [--keep]
#   --rebuild-base  debootstrap debian:12 again even if the image exists
#   --no-build      check the existing lotse:check image, do not build
#   --keep          keep the stopped container (its files stay inspectable
#                   with `podman mount`); logs are always kept
#
# Environment: LOTSE_CHECK_DIR (logs and the PKI; default
# /var/tmp/lotse-check-image), LOTSE_CHECK_IMAGE (default lotse:check),
# LOTSE_DEBIAN_MIRROR and LOTSE_DEBIAN_SECURITY_MIRROR (deb.debian.org).
#
# Needs root (podman storage, mounts, chroot), podman, debootstrap (only
# when the base image is missing) and openssl. Takes about 50 minutes on a
# busy 2-core machine when every object must compile, under a minute when
# ccache's build-cache mount has them (README, "Checking the image").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${LOTSE_CHECK_IMAGE:-lotse:check}
BASE_IMAGE=debian:12
WORK=${LOTSE_CHECK_DIR:-/var/tmp/lotse-check-image}
MIRROR=${LOTSE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${LOTSE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# The image's user (Dockerfile USER, the manifests' runAsUser/fsGroup).
RUN_ID=10001

SERVICES=(identity cases courses placement)
BINARIES=(lotse_identity lotse_cases lotse_courses lotse_placement
  lotse_health_probe lotsectl)

rebuild_base=0 build=1 keep=0
for arg in "$@"; do
  case $arg in
    --rebuild-base) rebuild_base=1 ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--rebuild-base] [--no-build] [--keep]" >&2; exit 2 ;;
  esac
done

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "run as root (podman storage, mounts, chroot)"
for tool in podman chroot openssl mount umount; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

LOGS=$WORK/last-run
rm -rf "$LOGS"
mkdir -p "$LOGS"

# --- results and timing -------------------------------------------------------
RESULTS=()  # "PASS|FAIL<TAB>check<TAB>detail"
PHASES=()   # "phase<TAB>seconds"
failed=0
pass() { RESULTS+=("PASS	$1	${2:-}"); log "PASS $1${2:+: $2}"; }
fail() { RESULTS+=("FAIL	$1	${2:-}"); failed=$((failed + 1)); log "FAIL $1${2:+: $2}"; }

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
seconds() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
phase_name='' phase_start=0
phase() {
  local t
  t=$(now_ms)
  if [ -n "$phase_name" ]; then
    PHASES+=("$phase_name	$(seconds $((t - phase_start)))")
  fi
  phase_name=${1:-} phase_start=$t
  [ -z "$phase_name" ] || log "phase $phase_name"
}
run_start=$(now_ms)

summary() {
  phase
  local size='unknown'
  if podman image exists "$IMAGE"; then
    size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
    size="$((size / 1000000)) MB ($size bytes, podman image inspect)"
  fi
  echo
  echo "== image check: $IMAGE =="
  local r status check detail
  for r in "${RESULTS[@]}"; do
    IFS=$'\t' read -r status check detail <<<"$r"
    printf '%-4s  %-28s %s\n' "$status" "$check" "$detail"
  done
  echo "image size: $size"
  printf 'time:'
  for r in "${PHASES[@]}"; do
    IFS=$'\t' read -r check detail <<<"$r"
    printf ' %s %s s,' "$check" "$detail"
  done
  printf ' total %s s\n' "$(seconds $(($(now_ms) - run_start)))"
  echo "logs: $LOGS"
  if [ "$failed" -eq 0 ]; then
    echo "result: PASS (${#RESULTS[@]} checks)"
  else
    echo "result: FAIL ($failed of ${#RESULTS[@]} checks failed)"
  fi
}

# --- clean-up -------------------------------------------------------------------
CONTAINER='' ROOTFS=''
MOUNTS=()   # mount points in the order mounted; unmounted in reverse
PIDS=()     # service processes, by index of SERVICES

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid i
  for pid in "${PIDS[@]}"; do
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${PIDS[@]}"; do
    [ -n "$pid" ] || continue
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    # -R: the read-only root is a recursive bind that carries copies of
    # the writable mounts beneath it.
    umount -R "${MOUNTS[$i]}" 2>/dev/null || umount -R -l "${MOUNTS[$i]}" ||
      log "could not unmount ${MOUNTS[$i]}"
  done
  if [ -n "$CONTAINER" ]; then
    podman umount "$CONTAINER" >/dev/null 2>&1 || true
    if [ "$keep" -eq 0 ]; then
      podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
    else
      log "container kept: $CONTAINER"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. base image ----------------------------------------------------------------
phase base
make_base() {
  command -v debootstrap >/dev/null || die "debootstrap not found"
  local dir
  dir=$(mktemp -d "$WORK/debian12.XXXXXX")
  log "debootstrap bookworm (minbase) from $MIRROR"
  if ! debootstrap --variant=minbase bookworm "$dir" "$MIRROR" \
      >"$LOGS/debootstrap.log" 2>&1; then
    rm -rf "$dir"
    return 1
  fi
  # As the official image: the bookworm, -updates and -security sources,
  # and no package lists or downloaded packages in the layer.
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin \
    "$dir"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$dir" -c . |
    podman import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' - "localhost/$BASE_IMAGE" >>"$LOGS/debootstrap.log" 2>&1
  local status=$?
  rm -rf "$dir"
  return $status
}
if [ "$rebuild_base" -eq 0 ] && podman image exists "$BASE_IMAGE"; then
  pass "base image" "$BASE_IMAGE present, reused"
elif make_base; then
  pass "base image" "$BASE_IMAGE made by debootstrap"
else
  fail "base image" "debootstrap or import failed, see $LOGS/debootstrap.log"
  summary
  exit 1
fi

# --- 2. build -----------------------------------------------------------------------
phase build
if [ "$build" -eq 1 ]; then
  log "podman build (log: $LOGS/build.log)"
  if (cd "$ROOT" && nice -n 10 podman build --isolation chroot \
      --ignorefile deploy/Dockerfile.dockerignore \
      -f deploy/Dockerfile -t "$IMAGE" .) >"$LOGS/build.log" 2>&1; then
    # No statistics when every layer came from the layer cache.
    hits=$(grep -E '^ *(Hits|Cacheable calls):' "$LOGS/build.log" | tail -2 |
      tr -s ' ' | paste -sd ';' - || true)
    pass "image build" "$IMAGE built${hits:+ (ccache:${hits})}"
  else
    tail -n 30 "$LOGS/build.log" >&2
    fail "image build" "podman build failed, see $LOGS/build.log"
    summary
    exit 1
  fi
elif podman image exists "$IMAGE"; then
  pass "image build" "skipped (--no-build), $IMAGE exists"
else
  fail "image build" "--no-build but $IMAGE does not exist"
  summary
  exit 1
fi

# --- 3. PKI ---------------------------------------------------------------------------
phase pki
CONTAINER=$(podman create --name "lotse-check-$$" "$IMAGE" true)
ROOTFS=$(podman mount "$CONTAINER")
pki_ok=0
if "$ROOT/tools/dev-pki.sh" "$LOGS/pki" >"$LOGS/pki.log" 2>&1; then
  # Into the container's own layer, before its root turns read-only: dirs
  # 0750 and files 0440 root:10001, as the manifests' projected Secret
  # volume (defaultMode 0440, fsGroup 10001) has them.
  tls=$ROOTFS/etc/lotse/tls
  mkdir -p "$tls"
  cp -r "$LOGS/pki/." "$tls/"
  rm -rf "$tls/test"
  chown -R 0:$RUN_ID "$tls"
  find "$tls" -type d -exec chmod 0750 {} +
  find "$tls" -type f -exec chmod 0440 {} +
  pki_ok=1
else
  fail "dev PKI" "tools/dev-pki.sh failed, see $LOGS/pki.log"
fi

# --- 4. prepare the image's root file system ------------------------------------------------
phase prepare

# Writable where the manifests give the pods volumes (the SQLite volume of
# the dev overlay, the emptyDir /tmp), read-only everywhere else.
for dir in /var/lib/lotse/data /tmp; do
  mount --bind "$ROOTFS$dir" "$ROOTFS$dir"
  MOUNTS+=("$ROOTFS$dir")
done
mount --rbind "$ROOTFS" "$ROOTFS"
MOUNTS+=("$ROOTFS")
mount -o remount,bind,ro "$ROOTFS"
mount -t proc proc "$ROOTFS/proc"
mount --bind /dev "$ROOTFS/dev"

# Runs a command in the image as its user, in its working directory, with
# nothing from this shell's environment but what is passed; exec_in_image
# replaces the calling (sub)shell, so a background job's $! is the command.
exec_in_image() {
  exec chroot --userspec=$RUN_ID:$RUN_ID --groups=$RUN_ID "$ROOTFS" \
    /usr/bin/env -i -C /var/lib/lotse PATH=/usr/local/bin:/usr/bin:/bin "$@"
}
in_image() { (exec_in_image "$@"); }

config=$(podman image inspect --format '{{.Config.User}} {{.Config.WorkingDir}}' "$IMAGE")
if [ "$config" = "$RUN_ID:$RUN_ID /var/lib/lotse" ]; then
  pass "image user, workdir" "$config"
else
  fail "image user, workdir" "'$config', want '$RUN_ID:$RUN_ID /var/lib/lotse'"
fi

user=$(chroot "$ROOTFS" getent passwd $RUN_ID || true)
if [[ $user == lotse:*:$RUN_ID:$RUN_ID:* ]]; then
  pass "user $RUN_ID" "$user"
else
  fail "user $RUN_ID" "passwd entry '${user}'"
fi

missing=''
for b in "${BINARIES[@]}"; do
  if ! in_image test -x "/usr/local/bin/$b"; then
    missing+=" $b (not executable)"
    continue
  fi
  unresolved=$(chroot "$ROOTFS" ldd "/usr/local/bin/$b" 2>&1 | grep 'not found' || true)
  [ -z "$unresolved" ] || missing+=" $b: $(echo "$unresolved" | awk '{print $1}' | paste -sd, -)"
done
if [ -z "$missing" ]; then
  pass "binaries, libraries" "${#BINARIES[@]} binaries, every shared library found (ldd)"
else
  fail "binaries, libraries" "${missing# }"
fi

# Legal holds end at midnight in Germany (common/lifecycle/holds.cc); the
# zone comes from the image's tzdata, which no ldd shows.
if in_image test -r /usr/share/zoneinfo/Europe/Berlin; then
  pass "time zone data" "/usr/share/zoneinfo/Europe/Berlin"
else
  fail "time zone data" "no /usr/share/zoneinfo/Europe/Berlin (tzdata)"
fi

if in_image test -w /var/lib/lotse/data -a -w /tmp -a \
    -r /etc/lotse/access-rules.conf -a -r /etc/lotse/retention.conf &&
  ! in_image test -w /var/lib/lotse -o -w /usr/local/bin; then
  pass "file permissions" "uid $RUN_ID writes /var/lib/lotse/data and /tmp only, reads the rules"
else
  fail "file permissions" "$(chroot "$ROOTFS" ls -ld /var/lib/lotse/data /tmp \
    /etc/lotse/access-rules.conf /etc/lotse/retention.conf 2>&1 | paste -sd';' -)"
fi

if [ "$pki_ok" -eq 1 ]; then
  if in_image test -r /etc/lotse/tls/servers/identity.key -a \
      ! -w /etc/lotse/tls/servers/identity.key; then
    pass "dev PKI" "/etc/lotse/tls, read-only for uid $RUN_ID"
  else
    fail "dev PKI" "uid $RUN_ID cannot read /etc/lotse/tls (or may write it)"
  fi
fi

# --- 5. start ---------------------------------------------------------------------------
phase start
# Free loopback ports below the ephemeral range, so that no outgoing
# connection or port-0 listener of another program takes one meanwhile.
declare -A TAKEN=()
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    [ -z "${TAKEN[$p]:-}" ] || continue
    [ -z "$(ss -Htln "sport = :$p")" ] || continue
    TAKEN[$p]=1
    echo "$p"
    return
  done
}
GRPC=() METRICS=() HEALTH=()
for i in "${!SERVICES[@]}"; do
  GRPC[i]=$(free_port)
  METRICS[i]=$(free_port)
  HEALTH[i]=$(free_port)
done
peer() { echo "$1=127.0.0.1:${GRPC[$2]}"; }
# Every service sends to the three others (tools/lotse.sh, EVENT_DESTINATIONS).
destinations() {
  local i out=''
  for i in "${!SERVICES[@]}"; do
    [ "${SERVICES[$i]}" = "$1" ] || out+="${out:+,}$(peer "${SERVICES[$i]}" "$i")"
  done
  echo "$out"
}

for i in "${!SERVICES[@]}"; do
  s=${SERVICES[$i]}
  args=(
    --listen="127.0.0.1:${GRPC[$i]}"
    --metrics_listen="127.0.0.1:${METRICS[$i]}"
    --health_listen="127.0.0.1:${HEALTH[$i]}"
    --tls_dir=/etc/lotse/tls
    --drain_grace=1s
    --shutdown_deadline=10s
    --retention_rules=/etc/lotse/retention.conf
    --event_destinations="$(destinations "$s")"
  )
  case $s in
    identity)
      args+=(--access_rules=/etc/lotse/access-rules.conf
        --audit_peers="$(peer cases 1),$(peer courses 2),$(peer placement 3)") ;;
    *) args+=(--identity_target="127.0.0.1:${GRPC[0]}") ;;
  esac
  # The database from the environment, as the manifests pass it.
  exec_in_image LOTSE_DATABASE="sqlite:/var/lib/lotse/data/$s.db" \
    "/usr/local/bin/lotse_$s" "${args[@]}" >"$LOGS/$s.log" 2>&1 &
  PIDS[i]=$!
done

healthy=()
for i in "${!SERVICES[@]}"; do
  s=${SERVICES[$i]}
  # Up to two minutes (migrations run before the port opens), but not
  # after the process has gone.
  healthy[i]=0 deadline=$((SECONDS + 120)) answer=''
  while kill -0 "${PIDS[$i]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    if answer=$(in_image lotse_health_probe --insecure \
        --target="127.0.0.1:${HEALTH[$i]}" --wait=2s 2>&1); then
      healthy[i]=1
      break
    fi
  done
  if [ "${healthy[$i]}" = 1 ]; then
    pass "health $s" "$answer on plaintext 127.0.0.1:${HEALTH[$i]}"
  else
    fail "health $s" "${answer:-no answer}; log: $(tail -n 3 "$LOGS/$s.log" | paste -sd' ' -)"
  fi
done

# --- 6. calls ---------------------------------------------------------------------------
phase calls
ctl() {
  in_image LOTSE_TLS_DIR=/etc/lotse/tls LOTSE_ACTOR=image-check \
    LOTSE_IDENTITY="127.0.0.1:${GRPC[0]}" LOTSE_CASES="127.0.0.1:${GRPC[1]}" \
    LOTSE_COURSES="127.0.0.1:${GRPC[2]}" LOTSE_PLACEMENT="127.0.0.1:${GRPC[3]}" \
    LOTSE_TIMEOUT=10s lotsectl "$@"
}
one_line() { tr -s ' \n' ' ' | cut -c1-150; }

if [ "${healthy[0]}" = 1 ]; then
  if out=$(ctl --client lotse-admin agencies list -o name 2>&1) &&
    grep -qx 'agencies/lotse-admin' <<<"$out"; then
    pass "mTLS identity" "lotse-admin: agencies list -> $(one_line <<<"$out")"
  else
    fail "mTLS identity" "lotse-admin: agencies list -> $(one_line <<<"$out")"
  fi
  # The servers know a caller by its certificate's CN, which the dev PKI
  # sets to the agency id; lotsectl's default identity is the SAN URI.
  if out=$(ctl --client lotse-admin agencies register dsb-nrw \
      --display-name 'Datenschutz NRW' --legal-domain data-protection \
      --certificate-identity dsb-nrw -o name 2>&1); then
    pass "register dsb-nrw" "$out"
  else
    fail "register dsb-nrw" "$(one_line <<<"$out")"
  fi
else
  fail "mTLS identity" "identity not healthy"
fi

# The other services learn of dsb-nrw from identity's event: ask until
# they answer (or a minute has passed).
for i in "${!SERVICES[@]}"; do
  s=${SERVICES[$i]}
  [ "${healthy[$i]}" = 1 ] || { fail "mTLS $s audit head" "not healthy"; continue; }
  deadline=$((SECONDS + 60)) tries=0
  while :; do
    tries=$((tries + 1))
    if out=$(ctl --client dsb-nrw audit head --service "$s" 2>&1); then
      pass "mTLS $s audit head" "dsb-nrw, try $tries: $(one_line <<<"$out")"
      break
    fi
    if [ $SECONDS -ge $deadline ]; then
      fail "mTLS $s audit head" "dsb-nrw, $tries tries: $(one_line <<<"$out")"
      break
    fi
    sleep 0.5
  done
done

# --- 7. stop ------------------------------------------------------------------------------
phase stop
for i in "${!SERVICES[@]}"; do
  kill -TERM "${PIDS[$i]}" 2>/dev/null || true
done
for i in "${!SERVICES[@]}"; do
  s=${SERVICES[$i]} pid=${PIDS[$i]}
  # Drain (1 s) and shutdown deadline (10 s) are well inside 60 s.
  for ((t = 0; t < 600; t++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  code=0
  if kill -0 "$pid" 2>/dev/null; then
    fail "SIGTERM $s" "still running after 60 s"
    continue
  fi
  wait "$pid" || code=$?
  PIDS[i]=''
  if [ "$code" -eq 0 ]; then
    pass "SIGTERM $s" "exit 0"
  else
    fail "SIGTERM $s" "exit $code; log: $(tail -n 3 "$LOGS/$s.log" | paste -sd' ' -)"
  fi
done
missing=''
for s in "${SERVICES[@]}"; do
  owner=$(stat -c %u "$ROOTFS/var/lib/lotse/data/$s.db" 2>/dev/null || echo none)
  [ "$owner" = "$RUN_ID" ] || missing+=" $s.db (owner $owner)"
done
if [ -z "$missing" ]; then
  files=("$ROOTFS"/var/lib/lotse/data/*.db)
  pass "databases" "${#files[@]} SQLite files of uid $RUN_ID in /var/lib/lotse/data"
else
  fail "databases" "${missing# }"
fi

summary
[ "$failed" -eq 0 ]
