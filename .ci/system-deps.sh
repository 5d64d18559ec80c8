#!/usr/bin/env bash
# What the test suite needs beside Python: a real MQTT broker (mosquitto, with mosquitto_passwd) and
# openssl (the TLS test's certificates). Installs them from Debian's packages when missing and
# possible (root, or password-less sudo); otherwise stops at once with one line saying what to install.
set -euo pipefail
need=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_passwd >/dev/null || [ -x /usr/bin/mosquitto_passwd ] || need+=(mosquitto)
command -v openssl >/dev/null || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
if command -v apt-get >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "make test needs: ${pkgs}- install them with: sudo apt-get install -y ${pkgs}" >&2; exit 1
    fi
  fi
  echo "installing ${pkgs}from Debian's packages (the tests run a real mosquitto)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq $pkgs >/dev/null
  exit 0
fi
echo "make test needs: ${pkgs}- install them with your package manager (e.g. brew install mosquitto openssl)" >&2
exit 1
