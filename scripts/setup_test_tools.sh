#!/usr/bin/env bash
# System tools the full test suite needs besides the virtualenv, from Debian's packages:
#   docker-compose (v1, the compose file's parser; no engine needed), chromium + chromium-driver (browser tests).
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
want=()
command -v docker-compose >/dev/null || want+=(docker-compose)
command -v chromium >/dev/null || want+=(chromium)
command -v chromedriver >/dev/null || want+=(chromium-driver)
if [ "${#want[@]}" -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root to install ${want[*]} (apt-get)" >&2; exit 1; }
  sudo="sudo"
fi
echo "==> installing Debian packages for the tests: ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null 2>&1 \
  || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null; }
