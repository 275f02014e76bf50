#!/usr/bin/env bash
# Headless Chromium for the HTML report test (crates/perfarena/tests/report_html_browser.rs):
# installs Debian's `chromium` (and a font) when it is missing. Nothing is started: the test
# launches its own browser per run and the browser exits with it.
#
#   bash scripts/chromium-env.sh up     # idempotent: a no-op when chromium is installed
#   bash scripts/chromium-env.sh down   # nothing to stop (kept for symmetry with the others)
#
# Knobs (environment): CHROME (the browser binary the test uses; default /usr/bin/chromium).
# From /work/shared/recipes/chromium.md §1 and §5: --no-install-recommends keeps it to ~25
# packages; DPkg::Lock::Timeout waits for another apt instead of failing at once.
set -euo pipefail

CHROME=${CHROME:-/usr/bin/chromium}
log() { printf '[chromium-env] %s\n' "$*" >&2; }

case "${1:-up}" in
  up)
    if [ -x "$CHROME" ]; then
      log "present: $("$CHROME" --version 2>/dev/null | head -n1)"
      exit 0
    fi
    if [ "$(id -u)" != 0 ]; then
      log "error: $CHROME is missing and installing it needs root: apt-get install chromium fonts-dejavu-core"
      exit 1
    fi
    log "installing chromium (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    [ -x "$CHROME" ] || { log "error: installed chromium but $CHROME is not there; set CHROME"; exit 1; }
    log "installed: $("$CHROME" --version 2>/dev/null | head -n1)"
    ;;
  down)
    ;;
  *)
    log "usage: $0 up|down"
    exit 2
    ;;
esac
