#!/bin/sh
# Everything `make bench` needs besides the project venv: wrk, redis-server, redis-benchmark, etcd, taskset
# (Debian packages, installed when missing; needs root or sudo) and the peers' own venv.
set -e
cd "$(dirname "$0")"
missing=""
command -v wrk >/dev/null || missing="$missing wrk"
command -v redis-server >/dev/null || missing="$missing redis-server"
command -v redis-benchmark >/dev/null || missing="$missing redis-tools"
command -v taskset >/dev/null || missing="$missing util-linux"
command -v etcd >/dev/null || missing="$missing etcd-server"  # etcd 3.4 on Debian 12; its binary is `etcd`
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
PY=${PY:-python3}
if [ ! -f .venv-peers/.installed ] || [ peers/requirements.txt -nt .venv-peers/.installed ]; then
  $PY -m venv .venv-peers
  .venv-peers/bin/pip install -q -r peers/requirements.txt
  touch .venv-peers/.installed
fi
