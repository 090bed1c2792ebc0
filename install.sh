#!/usr/bin/env bash
# Bellhop installer: packages, build, binary, service user, config, systemd unit.
# Run from anywhere; needs root (re-runs itself with sudo when it can). Safe to re-run:
# a re-run rebuilds, replaces the binary atomically and restarts the service, and never
# touches an existing /etc/bellhop/config.json (its secrets) or the data dir.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT_PATH="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
cd "$SCRIPT_DIR"
umask 022

# ---------------------------------------------------------------------------------------
# Fixed paths (the unit file in packaging/ uses the same ones).
CONFIG_DIR=/etc/bellhop
CONFIG_FILE=$CONFIG_DIR/config.json
DATA_DIR=/var/lib/bellhop
SERVICE_USER=bellhop
UNIT_NAME=bellhop.service
UNIT_DIR=/etc/systemd/system
UNIT_SOURCE=packaging/bellhop.service
BUILD_DIR=build/release
READY_TIMEOUT=30

# Packages (Debian 12 names). Boost is chosen separately: see choose_boost.
BUILD_PKGS=(build-essential cmake ninja-build pkg-config git libhiredis-dev libuv1-dev
            libjwt-dev rapidjson-dev libspdlog-dev libfmt-dev libssl-dev libcli11-dev
            libgtest-dev libgmock-dev libjemalloc-dev libcurl4-openssl-dev
            libhowardhinnant-date-dev libsodium-dev tzdata)
BOOST_VERSIONED_PKGS=(libboost1.81-dev libboost-system1.81-dev libboost-url1.81-dev)
BOOST_DEFAULT_PKGS=(libboost-dev libboost-system-dev libboost-url-dev)
RUNTIME_PKGS=(redis-server libjemalloc2 ca-certificates curl libcurl4 libdate-tz3 libsodium23 tzdata)
# clang and libclang-rt-dev (its libFuzzer and sanitizer runtimes): the fuzz targets (fuzz/).
TEST_PKGS=(redis-tools procps python3 python3-redis python3-websockets python3-aiosmtpd openssl nodejs npm
           chromium fonts-dejavu-core clang libclang-rt-dev)
BENCH_PKGS=(redis-tools wrk)

# ---------------------------------------------------------------------------------------
usage() {
  cat <<'EOF'
Usage: install.sh [OPTIONS]

Installs Bellhop on Debian 12+ (or Ubuntu 24.04+): build and runtime packages, a Release
build, the binary, the "bellhop" system user, /etc/bellhop/config.json (generated once,
never overwritten) and the hardened systemd unit; then starts the service and waits for
/readyz. Without systemd (a container) it runs `bellhop serve` in the foreground instead.
Re-running it upgrades in place.

Options:
  --deps-only          install the packages only (no build, no install)
  --with-test-deps     also install what the test suite needs (redis-tools, procps, python3-redis,
                       python3-websockets, python3-aiosmtpd, openssl, nodejs, npm, chromium,
                       clang and libclang-rt-dev for the fuzz targets)
  --with-bench-deps    also install what the benchmarks need (wrk, redis-tools)
  --check              with --deps-only: list missing packages, install nothing (no root
                       needed); exit 1 if any is missing
  --no-start           install everything but do not (re)start the service / run in the
                       foreground
  --prefix DIR         installation prefix of the binary (default /usr/local)
  --listen HOST:PORT   listen address written into a newly generated config
                       (default 0.0.0.0:8080; ignored when the config already exists)
  --uninstall          stop and disable the service, remove the unit and the binary;
                       keeps /etc/bellhop and /var/lib/bellhop
  --purge              with --uninstall: also delete /etc/bellhop, /var/lib/bellhop (the
                       embedded Redis data: queued messages are lost) and the bellhop user
  -h, --help           show this help

Paths: binary PREFIX/bin/bellhop, config /etc/bellhop/config.json, data /var/lib/bellhop,
unit /etc/systemd/system/bellhop.service, logs `journalctl -u bellhop`.
EOF
}

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

MODE=install
WITH_TEST=0
WITH_BENCH=0
CHECK_ONLY=0
NO_START=0
PURGE=0
PREFIX=/usr/local
LISTEN=""
ORIG_ARGS=("$@")

while [[ $# -gt 0 ]]; do
  case "$1" in
    --deps-only) MODE=deps ;;
    --with-test-deps) WITH_TEST=1 ;;
    --with-bench-deps) WITH_BENCH=1 ;;
    --check) CHECK_ONLY=1 ;;
    --no-start) NO_START=1 ;;
    --prefix)
      [[ $# -ge 2 && -n $2 ]] || die "--prefix needs a directory"
      PREFIX=$2; shift ;;
    --prefix=*) PREFIX=${1#*=} ;;
    --listen)
      [[ $# -ge 2 && -n $2 ]] || die "--listen needs HOST:PORT"
      LISTEN=$2; shift ;;
    --listen=*) LISTEN=${1#*=} ;;
    --uninstall) MODE=uninstall ;;
    --purge) PURGE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done

[[ $PURGE -eq 0 || $MODE == uninstall ]] || die "--purge is only valid with --uninstall"
[[ $CHECK_ONLY -eq 0 || $MODE == deps ]] || die "--check is only valid with --deps-only"
[[ $PREFIX == /* ]] || die "--prefix must be an absolute path (got '$PREFIX')"
PREFIX=${PREFIX%/}
[[ -n $PREFIX ]] || PREFIX=/
[[ $PREFIX != *[[:space:]\|\&]* ]] || die "--prefix must not contain spaces, '|' or '&'"
if [[ -n $LISTEN && ! $LISTEN =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):[0-9]{1,5}$ ]]; then
  die "--listen must look like HOST:PORT or [IPv6]:PORT (got '$LISTEN')"
fi
BIN_DIR=$PREFIX/bin
[[ $PREFIX == / ]] && BIN_DIR=/bin
BIN=$BIN_DIR/bellhop

systemd_running() { [[ -d /run/systemd/system ]]; }

# ---------------------------------------------------------------------------------------
# Root: re-run through sudo when possible. `--help` and `--deps-only --check` never need it;
# `--deps-only` needs it only when a package is missing (decided further down).
become_root() {
  [[ $EUID -eq 0 ]] && return 0
  if command -v sudo >/dev/null 2>&1; then
    step "Re-running as root with sudo"
    exec sudo -- bash "$SCRIPT_PATH" "${ORIG_ARGS[@]}"
  fi
  die "this step needs root: run it as root (sudo is not installed)"
}

# ---------------------------------------------------------------------------------------
detect_os() {
  [[ -r /etc/os-release ]] || die "cannot read /etc/os-release: Bellhop's installer supports Debian 12+ and Ubuntu 24.04+"
  local id version pretty major
  local -a os=()
  # shellcheck source=/dev/null
  mapfile -t os < <(. /etc/os-release && printf '%s\n' "${ID:-}" "${VERSION_ID:-}" "${PRETTY_NAME:-${ID:-unknown}}")
  id=${os[0]:-}
  version=${os[1]:-}
  pretty=${os[2]:-unknown}
  major=${version%%.*}
  case "$id" in
    debian)
      if [[ -z $version ]]; then
        note "$pretty (testing/unstable): proceeding, only Debian 12 is tested"
      elif [[ ! $major =~ ^[0-9]+$ ]] || (( major < 12 )); then
        die "$pretty is too old: Bellhop needs Debian 12 (bookworm) or newer"
      fi ;;
    ubuntu)
      # 22.04 ships CMake 3.22 and Boost 1.74 (no Boost.URL): it cannot build Bellhop.
      if [[ ! $major =~ ^[0-9]+$ ]] || (( major < 24 )); then
        die "$pretty is too old: Bellhop needs Ubuntu 24.04 or newer (22.04 has no Boost.URL and CMake < 3.25)"
      fi
      note "$pretty: supported on a best-effort basis, Debian 12 is the tested platform" ;;
    *)
      die "unsupported OS '$pretty': Bellhop's installer supports Debian 12+ and Ubuntu 24.04+" ;;
  esac
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found"
  step "OS: $pretty"
}

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

pkg_available() {
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
  [[ -n $candidate && $candidate != "(none)" ]]
}

# Debian 12: the versioned 1.81 packages (the default libboost-dev there is 1.74, without
# Boost.URL). Newer releases: the default packages, when they include Boost.URL.
BOOST_PKGS=()
choose_boost() {
  if pkg_installed libboost-url1.81-dev || pkg_available libboost-url1.81-dev; then
    BOOST_PKGS=("${BOOST_VERSIONED_PKGS[@]}")
  elif pkg_installed libboost-url-dev || pkg_available libboost-url-dev; then
    BOOST_PKGS=("${BOOST_DEFAULT_PKGS[@]}")
  else
    BOOST_PKGS=()
  fi
}

wanted_packages() {
  local -a pkgs=()
  if [[ $MODE == install || $MODE == deps ]]; then
    pkgs+=("${BUILD_PKGS[@]}" "${BOOST_PKGS[@]}" "${RUNTIME_PKGS[@]}")
  fi
  [[ $WITH_TEST -eq 1 ]] && pkgs+=("${TEST_PKGS[@]}")
  [[ $WITH_BENCH -eq 1 ]] && pkgs+=("${BENCH_PKGS[@]}")
  printf '%s\n' "${pkgs[@]}" | awk 'NF && !seen[$0]++'
}

MISSING=()
compute_missing() {
  MISSING=()
  local p
  while IFS= read -r p; do
    # Node.js from another source (e.g. a vendor repository) ships npm inside its nodejs
    # package and conflicts with Debian's npm: a working node/npm on PATH is good enough.
    case $p in
      nodejs) command -v node >/dev/null 2>&1 && continue ;;
      npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    pkg_installed "$p" || MISSING+=("$p")
  done < <(wanted_packages)
}

# Installing Debian's redis-server enables and starts a system Redis on 6379. Bellhop runs
# its own (a child process on 6390 + a unix socket), so when this script is what installed
# the package, that system service is switched off again. A redis-server that was already
# installed belongs to the machine (maybe the hotel's own Redis) and is left as it is.
REDIS_WAS_INSTALLED=1
handle_system_redis() {
  if [[ $REDIS_WAS_INSTALLED -eq 1 ]] || ! pkg_installed redis-server; then
    return 0
  fi
  if systemd_running; then
    step "Disabling the system redis-server service this script just installed (Bellhop runs its own Redis)"
    systemctl disable --now redis-server.service >/dev/null 2>&1 \
      || warn "could not disable redis-server.service; it is not needed by Bellhop"
  else
    step "Stopping the system redis-server this script just installed, if it started (Bellhop runs its own Redis)"
    if command -v invoke-rc.d >/dev/null 2>&1; then
      invoke-rc.d redis-server stop >/dev/null 2>&1 || true
    fi
  fi
}

install_packages() {
  choose_boost
  compute_missing
  if [[ ${#MISSING[@]} -eq 0 && ${#BOOST_PKGS[@]} -gt 0 ]]; then
    step "All required packages are installed"
    return 0
  fi
  if [[ $CHECK_ONLY -eq 1 ]]; then
    [[ ${#BOOST_PKGS[@]} -gt 0 ]] || note "missing: Boost with Boost.URL (libboost-url1.81-dev or libboost-url-dev)"
    [[ ${#MISSING[@]} -eq 0 ]] || note "missing: ${MISSING[*]}"
    exit 1
  fi
  become_root
  export DEBIAN_FRONTEND=noninteractive
  step "Updating the package lists (apt-get update)"
  apt-get update -q
  choose_boost
  [[ ${#BOOST_PKGS[@]} -gt 0 ]] \
    || die "no Boost with Boost.URL (>= 1.81) in this release's packages: need libboost-url1.81-dev or libboost-url-dev"
  compute_missing
  [[ ${#MISSING[@]} -gt 0 ]] || { step "All required packages are installed"; return 0; }
  if pkg_installed redis-server; then REDIS_WAS_INSTALLED=1; else REDIS_WAS_INSTALLED=0; fi
  step "Installing packages: ${MISSING[*]}"
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${MISSING[@]}"
  handle_system_redis
}

# ---------------------------------------------------------------------------------------
build_jobs() {
  local cpus mem_kb by_mem
  cpus=$(nproc 2>/dev/null || echo 1)
  if [[ ${CI:-} == true ]] || (( cpus <= 2 )); then cpus=2; fi
  # About 1.5 GB per compiler process (Boost.Beast/Asio translation units are heavy).
  mem_kb=$(awk '/^MemAvailable:/ {print $2; exit}' /proc/meminfo 2>/dev/null || echo 0)
  by_mem=$(( mem_kb / 1500000 ))
  (( by_mem < 1 )) && by_mem=1
  (( by_mem < cpus )) && cpus=$by_mem
  echo "$cpus"
}

# When run through sudo from a user's checkout, build as the owner of the tree so that
# build/ stays usable by that user (./test.sh, manual builds) and git does not object.
BUILD_USER=""
as_build_user() {
  if [[ -n $BUILD_USER ]]; then runuser -u "$BUILD_USER" -- "$@"; else "$@"; fi
}

build() {
  local owner jobs
  owner=$(stat -c %U "$SCRIPT_DIR")
  if [[ $owner != root && $owner != UNKNOWN ]] && command -v runuser >/dev/null 2>&1; then
    BUILD_USER=$owner
    [[ -e build ]] && chown "$owner" build
    [[ -e $BUILD_DIR ]] && chown -R "$owner" "$BUILD_DIR"
  fi
  # A tree configured with another generator (e.g. a manual `cmake -B build/release`)
  # cannot be switched to Ninja in place.
  if [[ -f $BUILD_DIR/CMakeCache.txt ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$BUILD_DIR/CMakeCache.txt"; then
    step "Removing $BUILD_DIR (configured with another generator)"
    rm -rf "$BUILD_DIR"
  fi
  jobs=$(build_jobs)
  step "Configuring the Release build in $BUILD_DIR${BUILD_USER:+ (as $BUILD_USER)}"
  as_build_user cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBELLHOP_BUILD_TESTS=OFF -DBELLHOP_BUILD_BENCH=OFF -DBELLHOP_SANITIZE=OFF
  step "Building bellhop ($jobs parallel jobs; the first build takes a few minutes)"
  as_build_user cmake --build "$BUILD_DIR" --target bellhop --parallel "$jobs"
}

STAGE=""
TMP_BIN=""
TMP_UNIT=""
cleanup() {
  [[ -n $STAGE ]] && rm -rf "$STAGE"
  [[ -n $TMP_BIN ]] && rm -f "$TMP_BIN"
  [[ -n $TMP_UNIT ]] && rm -f "$TMP_UNIT"
  return 0
}
trap cleanup EXIT

# The new binary is copied next to the old one and renamed over it: a running bellhop keeps
# its (unlinked) old file, and nothing ever sees a half-written binary.
install_binary() {
  step "Installing $BIN"
  STAGE=$(mktemp -d)
  [[ -z $BUILD_USER ]] || chown "$BUILD_USER" "$STAGE"
  as_build_user cmake --install "$BUILD_DIR" --prefix "$STAGE" >/dev/null
  [[ -x $STAGE/bin/bellhop ]] || die "the build did not produce bin/bellhop"
  install -d -m 0755 "$BIN_DIR"
  TMP_BIN=$(mktemp "$BIN_DIR/.bellhop.new.XXXXXX")
  install -m 0755 -o root -g root "$STAGE/bin/bellhop" "$TMP_BIN"
  mv -f "$TMP_BIN" "$BIN"
  TMP_BIN=""
  note "$("$BIN" version 2>/dev/null || echo "installed (bellhop version failed)")"
}

# ---------------------------------------------------------------------------------------
ensure_user() {
  if getent passwd "$SERVICE_USER" >/dev/null; then
    note "system user '$SERVICE_USER' exists"
    return 0
  fi
  step "Creating system user '$SERVICE_USER' (no login, home $DATA_DIR)"
  local nologin=/usr/sbin/nologin
  [[ -x $nologin ]] || nologin=/bin/false
  getent group "$SERVICE_USER" >/dev/null || groupadd --system "$SERVICE_USER"
  useradd --system --gid "$SERVICE_USER" --home-dir "$DATA_DIR" --no-create-home \
    --shell "$nologin" --comment "Bellhop messaging gateway" "$SERVICE_USER"
}

# Owner of the data dir and group of the config: the service user when there is one,
# root otherwise (container mode, where bellhop runs as root).
OWNER=root
prepare_dirs() {
  getent passwd "$SERVICE_USER" >/dev/null && OWNER=$SERVICE_USER
  step "Preparing $CONFIG_DIR (0750 root:$OWNER) and $DATA_DIR (0750 $OWNER:$OWNER)"
  install -d -m 0750 -o root -g "$OWNER" "$CONFIG_DIR"
  install -d -m 0750 -o "$OWNER" -g "$OWNER" "$DATA_DIR"
}

ensure_config() {
  if [[ -e $CONFIG_FILE ]]; then
    step "Keeping the existing $CONFIG_FILE"
    [[ -z $LISTEN ]] || note "--listen $LISTEN ignored: edit \"listen\" in $CONFIG_FILE instead"
  else
    step "Generating $CONFIG_FILE with fresh secrets"
    local -a args=(gen-config --output "$CONFIG_FILE" --data-dir "$DATA_DIR")
    [[ -z $LISTEN ]] || args+=(--listen "$LISTEN")
    "$BIN" "${args[@]}" || die "bellhop gen-config failed"
  fi
  # Readable by the service user, writable only by root.
  chown root:"$OWNER" "$CONFIG_FILE"
  chmod 0640 "$CONFIG_FILE"
}

check_config() {
  step "Checking the configuration"
  local -a cmd=("$BIN" check-config --config "$CONFIG_FILE")
  if [[ $OWNER != root ]]; then
    cmd=(runuser -u "$SERVICE_USER" -- "${cmd[@]}")
  fi
  "${cmd[@]}" || die "$CONFIG_FILE has errors (listed above): fix them and run install.sh again"
}

# "listen" from the config (first occurrence; default 0.0.0.0:8080) -> a URL for the probe.
readyz_url() {
  local listen host port
  listen=$(sed -n -e '/^[[:space:]]*\/\//d' -e 's/.*"listen"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$CONFIG_FILE" | head -n 1)
  [[ -n $listen ]] || listen=0.0.0.0:8080
  port=${listen##*:}
  host=${listen%:*}
  case "$host" in
    ""|0.0.0.0|"*") host=127.0.0.1 ;;
    "[::]") host="[::1]" ;;
  esac
  [[ $port =~ ^[0-9]+$ ]] || port=8080
  printf 'http://%s:%s/readyz' "$host" "$port"
}

install_unit() {
  step "Installing $UNIT_DIR/$UNIT_NAME"
  [[ -f $UNIT_SOURCE ]] || die "$UNIT_SOURCE not found"
  TMP_UNIT=$(mktemp "$UNIT_DIR/.bellhop.service.XXXXXX")
  sed "/^Exec/s|/usr/local/bin/bellhop|$BIN|g" "$UNIT_SOURCE" >"$TMP_UNIT"
  chmod 0644 "$TMP_UNIT"
  mv -f "$TMP_UNIT" "$UNIT_DIR/$UNIT_NAME"
  TMP_UNIT=""
  systemctl daemon-reload
  systemctl enable "$UNIT_NAME" >/dev/null 2>&1 || die "systemctl enable $UNIT_NAME failed"
}

start_service() {
  local url deadline body
  url=$(readyz_url)
  step "Restarting $UNIT_NAME"
  if ! systemctl restart "$UNIT_NAME"; then
    systemctl status --no-pager --lines=20 "$UNIT_NAME" >&2 || true
    die "bellhop did not start; see: journalctl -u bellhop -e"
  fi
  step "Waiting up to ${READY_TIMEOUT}s for $url"
  deadline=$((SECONDS + READY_TIMEOUT))
  while (( SECONDS < deadline )); do
    if body=$(curl -fsS --max-time 2 "$url" 2>/dev/null); then
      step "Bellhop is ready: $url -> ${body:-200 OK}"
      note "logs:   journalctl -u bellhop -f"
      note "config: $CONFIG_FILE (sudo systemctl restart bellhop after editing)"
      note "AI engine connection to the embedded Redis: journalctl -u bellhop | grep -i redis"
      return 0
    fi
    if systemctl is-failed --quiet "$UNIT_NAME"; then
      systemctl status --no-pager --lines=20 "$UNIT_NAME" >&2 || true
      die "bellhop stopped while starting; see: journalctl -u bellhop -e"
    fi
    sleep 1
  done
  systemctl status --no-pager --lines=20 "$UNIT_NAME" >&2 || true
  die "bellhop is running but $url did not answer 200 within ${READY_TIMEOUT}s; see: journalctl -u bellhop -e"
}

# ---------------------------------------------------------------------------------------
uninstall() {
  local bin=$BIN unit=$UNIT_DIR/$UNIT_NAME exec_path
  # Trust the installed unit for the binary's path (it may use another --prefix).
  if [[ -f $unit ]]; then
    exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" | head -n 1)
    [[ $exec_path == */bellhop ]] && bin=$exec_path
  fi
  if systemd_running; then
    if [[ -f $unit ]] || systemctl cat "$UNIT_NAME" >/dev/null 2>&1; then
      step "Stopping and disabling $UNIT_NAME"
      systemctl disable --now "$UNIT_NAME" >/dev/null 2>&1 || warn "could not stop $UNIT_NAME"
    fi
  fi
  if [[ -f $unit ]]; then
    step "Removing $unit"
    rm -f "$unit"
    if systemd_running; then
      systemctl daemon-reload
      systemctl reset-failed "$UNIT_NAME" >/dev/null 2>&1 || true
    fi
  fi
  if [[ -e $bin ]]; then
    step "Removing $bin"
    rm -f "$bin"
  fi
  if [[ $PURGE -eq 1 ]]; then
    step "Purging $CONFIG_DIR and $DATA_DIR (configuration, secrets and the embedded Redis data)"
    rm -rf "$CONFIG_DIR" "$DATA_DIR"
    if getent passwd "$SERVICE_USER" >/dev/null; then
      step "Removing system user '$SERVICE_USER'"
      userdel "$SERVICE_USER" || warn "could not remove user $SERVICE_USER"
    fi
    if getent group "$SERVICE_USER" >/dev/null; then
      groupdel "$SERVICE_USER" >/dev/null 2>&1 || true
    fi
    step "Bellhop is removed (packages such as redis-server are left installed)"
  else
    step "Bellhop is uninstalled; kept $CONFIG_DIR and $DATA_DIR (use --uninstall --purge to delete them)"
  fi
}

# ---------------------------------------------------------------------------------------
main() {
  case "$MODE" in
    uninstall)
      become_root
      uninstall
      return 0 ;;
    deps)
      detect_os
      install_packages
      step "Done (packages only)"
      return 0 ;;
  esac

  become_root
  detect_os
  install_packages
  build
  install_binary
  if systemd_running; then
    ensure_user
  fi
  prepare_dirs
  ensure_config
  check_config

  if systemd_running; then
    install_unit
    if [[ $NO_START -eq 1 ]]; then
      step "Installed and enabled; not started (--no-start). Start with: systemctl restart bellhop"
      return 0
    fi
    start_service
  else
    step "systemd is not running here (a container?): no service installed"
    if [[ $NO_START -eq 1 ]]; then
      note "start it with: $BIN serve --config $CONFIG_FILE"
      return 0
    fi
    step "Starting bellhop in the foreground (SIGTERM or Ctrl-C stops it)"
    cleanup
    trap - EXIT
    exec "$BIN" serve --config "$CONFIG_FILE"
  fi
}

main
