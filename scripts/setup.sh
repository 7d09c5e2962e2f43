# shellcheck shell=bash
# Sourced by scripts/demo and scripts/test: makes sure this machine has what sandkit-mcp needs
# (Go, bubblewrap), installing bubblewrap with apt when it is missing and we are allowed to.
set -euo pipefail

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    if [ -x /usr/local/go/bin/go ]; then
      export PATH="/usr/local/go/bin:$PATH"
    else
      echo "Go is missing: install Go >= 1.25 from https://go.dev/dl/ and re-run." >&2
      exit 1
    fi
  fi
}

need_bwrap() {
  if command -v bwrap >/dev/null 2>&1; then
    return
  fi
  echo "bubblewrap (bwrap) is missing; installing it with apt ..." >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "cannot install it without root; run this, then re-run:" >&2
    echo "    sudo apt-get install -y bubblewrap" >&2
    exit 1
  fi
  command -v bwrap >/dev/null 2>&1 || { echo "bwrap still missing after apt-get install bubblewrap" >&2; exit 1; }
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
need_go
need_bwrap
