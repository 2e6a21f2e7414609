#!/usr/bin/env bash
# Installs the Debian packages a `make` profile needs, and nothing else.
#   bash deploy/local/system-packages.sh test   # redis-server, dcmtk, orthanc, chromium: the integration and e2e tests need them
#   bash deploy/local/system-packages.sh run    # nothing mandatory; redis-server preferred over the embedded broker
# Quiet and exit 0 when everything is present. As root with apt-get: installs what is missing without letting the
# packages start their system-wide services. Otherwise: prints the missing packages and the command, exits 1.
set -euo pipefail

# One line per profile: "absolute-command-path=debian-package" pairs. Paths are absolute because the project's venv
# puts pynetdicom's own storescu/echoscu on PATH, which would hide dcmtk's from `command -v`.
declare -A REQUIRED=(
  [test]="/usr/bin/redis-server=redis-server /usr/bin/storescu=dcmtk /usr/bin/echoscu=dcmtk /usr/bin/dcmdump=dcmtk /usr/sbin/Orthanc=orthanc /usr/bin/chromium=chromium"
  [run]=""
)
# Installed when possible, but their absence is not an error (the program has a fallback).
declare -A PREFERRED=(
  [run]="/usr/bin/redis-server=redis-server"
)
# Services Debian would start on install; we never want a system-wide copy running (tests start their own).
SERVICES=(redis-server orthanc)
POLICY=/usr/sbin/policy-rc.d

usage() {
  echo "usage: $0 <profile>   (profiles: ${!REQUIRED[*]})" >&2
  exit 2
}

# Prints the packages (deduplicated, in order) whose command is missing from a list of path=package pairs.
missing_packages() {
  local pair path pkg seen=" "
  for pair in $1; do
    path=${pair%%=*}
    pkg=${pair#*=}
    if [[ ! -x $path && $seen != *" $pkg "* ]]; then
      seen+="$pkg "
      echo "$pkg"
    fi
  done
}

# Active system services before the install, so we stop only what the install itself started.
active_services() {
  command -v systemctl >/dev/null && [[ -d /run/systemd/system ]] || return 0
  local svc
  for svc in "${SERVICES[@]}"; do
    systemctl is-active --quiet "$svc" 2>/dev/null && echo "$svc"
  done
  return 0
}

# policy-rc.d exit 101 = "action forbidden": invoke-rc.d and deb-systemd-invoke then skip starting services, so the
# install neither hangs on a service start nor leaves a system-wide redis/orthanc behind. An existing policy is
# restored afterwards (Docker images ship one).
deny_service_starts() {
  if [[ -e $POLICY ]]; then
    POLICY_BACKUP=$(mktemp /usr/sbin/policy-rc.d.tumorsearch.XXXXXX)
    cp -p "$POLICY" "$POLICY_BACKUP"
  fi
  printf '#!/bin/sh\n# Temporary, written by TumorSearch system-packages.sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  trap restore_policy EXIT
  trap 'exit 130' INT TERM  # so an interrupted install still restores the policy via the EXIT trap
}

restore_policy() {
  if [[ -n ${POLICY_BACKUP:-} ]]; then
    mv -f "$POLICY_BACKUP" "$POLICY"
  else
    rm -f "$POLICY"
  fi
}

# Belt and braces: if a service started anyway (e.g. a postinst calling systemctl directly), stop it again.
stop_new_services() {
  local before=" $1 " svc
  for svc in $(active_services); do
    if [[ $before != *" $svc "* ]]; then
      echo "system-packages: stopping system-wide $svc started by its package install" >&2
      systemctl stop "$svc" || true
    fi
  done
}

apt_install() {
  local before
  before=$(active_services | tr '\n' ' ')
  deny_service_starts
  echo "system-packages: installing $*" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "$@"
  stop_new_services "$before"
}

can_install() {
  [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null
}

main() {
  [[ $# -eq 1 && -v "REQUIRED[$1]" ]] || usage
  local profile=$1 required preferred
  required=$(missing_packages "${REQUIRED[$profile]}" | tr '\n' ' ')
  preferred=$(missing_packages "${PREFERRED[$profile]:-}" | tr '\n' ' ')
  required=${required% }
  preferred=${preferred% }
  [[ -z $required && -z $preferred ]] && exit 0

  if can_install; then
    # shellcheck disable=SC2086  # word splitting into package names is intended
    apt_install $required $preferred
    required=$(missing_packages "${REQUIRED[$profile]}" | tr '\n' ' ')
    if [[ -n $required ]]; then
      echo "system-packages: expected ${REQUIRED[$profile]} after install; still missing: $required" >&2
      exit 1
    fi
    exit 0
  fi
  if [[ -n $preferred ]]; then
    echo "system-packages: optional for '$profile', not installed: $preferred" >&2
    echo "  install with: sudo apt-get install -y --no-install-recommends $preferred" >&2
  fi
  if [[ -n $required ]]; then
    echo "system-packages: profile '$profile' needs Debian packages that are missing: $required" >&2
    echo "  install with: sudo apt-get update && sudo apt-get install -y --no-install-recommends $required" >&2
    exit 1
  fi
  exit 0
}

main "$@"
