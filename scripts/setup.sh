# shellcheck shell=bash
# Sourced by scripts/demo and scripts/test: makes sure this machine has what sandkit-mcp needs
# (Go, bubblewrap) and its tests need (curl, wget and python3 fetch preview URLs in
# TestPreviewTransport; git runs in sandboxes in TestSeccompToolsStillWork), installing what is
# missing with apt when we are allowed to.
set -euo pipefail

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    if [ -x /usr/local/go/bin/go ]; then
      export PATH="/usr/local/go/bin:$PATH"
    else
      echo "Go is missing: install Go >= 1.26.8 (the go line of go.mod) from https://go.dev/dl/ and re-run." >&2
      exit 1
    fi
  fi
}

# need_cmd CMD PACKAGE installs PACKAGE with apt when CMD is missing.
need_cmd() {
  if command -v "$1" >/dev/null 2>&1; then
    return
  fi
  echo "$1 is missing; installing $2 with apt ..." >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "cannot install it without root; run this, then re-run:" >&2
    echo "    sudo apt-get install -y $2" >&2
    exit 1
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "$1 still missing after apt-get install $2" >&2; exit 1; }
}

need_bwrap() { need_cmd bwrap bubblewrap; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
need_go
need_bwrap
if [ "${SANDKIT_SETUP_TEST_TOOLS:-}" = 1 ]; then
  need_cmd curl curl
  need_cmd wget wget
  need_cmd git git
  need_cmd python3 python3
fi
