#!/usr/bin/env bash
# Set-up for the browser test (tests/test_lab.py): Debian's chromium from apt (never a downloaded browser) and the
# playwright package that drives it. Idempotent and quiet: does nothing when both are already there.
# Usage: tests/setup_browser.sh [python]   (the interpreter to install playwright into; default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -y -qq"
    log="$(mktemp)"; trap 'rm -f "$log"' EXIT
    echo "setup_browser: installing Debian's chromium through apt"
    # Try without refreshing the package lists first; refresh them only when that fails (fresh images have none).
    if ! $APT install chromium >"$log" 2>&1; then
        { $APT update && $APT install chromium; } >"$log" 2>&1 || { cat "$log"; echo "setup_browser: apt-get install chromium failed" >&2; exit 1; }
    fi
    [ -x /usr/bin/chromium ] || { echo "setup_browser: apt installed no /usr/bin/chromium" >&2; exit 1; }
fi

# playwright is a dev requirement (settings.ini); install it here as well so the script alone readies the test.
# Only the Python package: the browser is the chromium above, never one from `playwright install`.
"$PY" -c "import playwright.sync_api" 2>/dev/null || "$PY" -m pip install -q playwright
