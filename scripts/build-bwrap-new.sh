#!/usr/bin/env bash
# Builds a newer bubblewrap (0.12.0, the version Debian 13 ships; >= 0.10 has --overlay) from the
# Debian source tarball, so the local provider can be tested against it on hosts whose own bwrap
# is older (Debian 12: 0.8.0). Debian 13's .deb cannot simply be installed on Debian 12: it needs
# GLIBC_2.38.
#
# Usage: scripts/build-bwrap-new.sh [CACHE_DIR]      (default: $HOME/.cache/sandkit/bwrap-0.12)
#
# Prints the absolute path of the built bwrap on stdout, and nothing else; progress and errors go
# to stderr. Idempotent: when CACHE_DIR already holds a binary built from the pinned tarball it
# only prints its path (no apt, no network). Otherwise it installs the build dependencies with apt
# (as root, or through passwordless sudo), downloads the tarball, checks its pinned sha256 (the one
# in Debian's signed bubblewrap_0.12.0-1.dsc), builds it with meson/ninja and installs
# CACHE_DIR/bwrap. Never reads stdin. Exits non-zero with a message when it cannot.
#
# SANDKIT_DEBIAN_MIRROR: space-separated Debian mirror base URLs to try
# (default: https://deb.debian.org/debian http://deb.debian.org/debian).
set -euo pipefail
# stdout is only for the result (fd 3); everything else, including the tools', goes to stderr.
exec </dev/null 3>&1 1>&2

readonly VERSION=0.12.0
readonly SHA256=9760d007363e3abba7c747489910f9f82d9fca53ba3bd3282e396fa3c97a3314
readonly TARBALL=bubblewrap_${VERSION}.orig.tar.xz
readonly POOL=pool/main/b/bubblewrap
MIRRORS=${SANDKIT_DEBIAN_MIRROR:-https://deb.debian.org/debian http://deb.debian.org/debian}
DEPS=(meson ninja-build libcap-dev pkg-config gcc libc6-dev xz-utils ca-certificates curl)

log() { echo "build-bwrap-new: $*"; }
die() {
  echo "build-bwrap-new: error: $*"
  exit 1
}

if [ $# -gt 0 ]; then
  cache=$1
else
  [ -n "${HOME:-}" ] || die "HOME is not set; pass the cache directory as the first argument"
  cache=$HOME/.cache/sandkit/bwrap-0.12
fi
mkdir -p "$cache" || die "cannot create the cache directory $cache"
cache=$(cd "$cache" && pwd -P)
bin=$cache/bwrap
stamp=$cache/bwrap.source-sha256 # the sha256 of the tarball $bin was built from

# One build per cache directory at a time (scripts/test may run concurrently).
exec 9>"$cache/.lock"
flock -w 900 9 || die "timed out waiting for another build in $cache (lock $cache/.lock)"

built() {
  [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$SHA256" ] &&
    [ "$("$bin" --version 2>/dev/null)" = "bubblewrap $VERSION" ]
}

if built; then
  log "cached: $bin (bubblewrap $VERSION)"
  echo "$bin" >&3
  exit 0
fi

# --- build dependencies --------------------------------------------------------------------
missing=()
for p in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing build dependencies (${missing[*]}) and no apt-get to install them"
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    die "missing build dependencies (${missing[*]}); install them as root, then re-run: apt-get install -y ${missing[*]}"
  fi
  apt_install() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  }
  log "installing build dependencies with apt: ${missing[*]}"
  if ! apt_install; then
    log "apt-get install failed; refreshing the package lists and retrying"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
      die "apt-get update failed; cannot install ${missing[*]}"
    apt_install || die "apt-get install ${missing[*]} failed"
  fi
fi

# --- source --------------------------------------------------------------------------------
src=$cache/src
mkdir -p "$src"
tarball=$src/$TARBALL
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
if [ -f "$tarball" ] && [ "$(sha_of "$tarball")" = "$SHA256" ]; then
  log "source: $tarball (already downloaded, sha256 ok)"
else
  rm -f "$tarball"
  tried=()
  for m in $MIRRORS; do
    url=${m%/}/$POOL/$TARBALL
    log "downloading $url"
    if ! curl -fsSL --retry 2 --connect-timeout 20 --max-time 300 -o "$tarball.part" "$url"; then
      tried+=("$url: download failed")
      continue
    fi
    got=$(sha_of "$tarball.part")
    if [ "$got" != "$SHA256" ]; then
      tried+=("$url: sha256 $got, want $SHA256")
      continue
    fi
    mv -f "$tarball.part" "$tarball"
    break
  done
  rm -f "$tarball.part"
  if [ ! -f "$tarball" ]; then
    printf '  %s\n' "${tried[@]}"
    die "could not download a verified $TARBALL (set SANDKIT_DEBIAN_MIRROR to a reachable Debian mirror)"
  fi
fi

# --- build ---------------------------------------------------------------------------------
tree=$src/bubblewrap-$VERSION
rm -rf "$tree"
tar -xJf "$tarball" -C "$src" || die "cannot unpack $tarball"
[ -f "$tree/meson.build" ] || die "$tarball did not unpack to $tree"
log "building bubblewrap $VERSION in $tree/_build"
meson setup "$tree/_build" "$tree" --buildtype=release \
  -Dman=disabled -Dtests=false -Dselinux=disabled -Dbash_completion=disabled -Dzsh_completion=disabled ||
  die "meson setup failed (see above)"
ninja -C "$tree/_build" || die "ninja failed (see above)"

out=$tree/_build/bwrap
v=$("$out" --version 2>&1) || die "the built $out does not run: $v"
[ "$v" = "bubblewrap $VERSION" ] || die "the built $out reports '$v', want 'bubblewrap $VERSION'"
"$out" --help 2>&1 | grep -q -- '--overlay-src' || die "the built $out has no --overlay-src"

install -m 0755 "$out" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
echo "$SHA256" >"$stamp"
rm -rf "$tree" # keep the tarball: a rebuild then needs no network
log "built $bin (bubblewrap $VERSION)"
echo "$bin" >&3
