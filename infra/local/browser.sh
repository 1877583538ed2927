#!/usr/bin/env bash
# The browser tests/ui drives through Playwright: Debian's Chromium. Playwright's own browser
# downloads are not used (they fetch from outside the package registries), so this installs
# the `chromium` package with apt-get when the binary is missing. Idempotent; prints the
# browser's version.
#
#   infra/local/browser.sh            install when missing, then print the version
#
# Settings (environment): SEGPIPE_CHROMIUM (the binary, default /usr/bin/chromium; the tests
# read the same variable).
set -euo pipefail

CHROMIUM="${SEGPIPE_CHROMIUM:-/usr/bin/chromium}"

log() { echo "browser: $*" >&2; }
die() { log "$*"; exit 1; }

if [[ ! -x "$CHROMIUM" ]]; then
  [[ "$(id -u)" == 0 ]] || die "$CHROMIUM is missing: run 'sudo apt-get install -y chromium'"
  [[ "$CHROMIUM" == /usr/bin/chromium ]] || die "$CHROMIUM is missing (set by SEGPIPE_CHROMIUM)"
  log "installing Chromium from Debian's package"
  apt-get -o Acquire::Retries=5 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=5 install -y -qq --no-install-recommends chromium >/dev/null
  [[ -x "$CHROMIUM" ]] || die "apt-get installed chromium but $CHROMIUM is still missing"
fi
# The wrapper script reads /etc/chromium.d; --version needs no display.
log "$("$CHROMIUM" --version 2>/dev/null | head -n 1)"
