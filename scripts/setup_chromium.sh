#!/usr/bin/env bash
# Install Debian's chromium for the test that renders an HTML report headless and checks the
# screenshot (tests/test_report_html.py, marked slow). Idempotent and quiet: a machine that has
# chromium already takes no time. Where apt-get is missing, or we are not root and sudo cannot
# run without a password, it says so on stderr and exits 0: the test then skips outside CI and
# fails in CI (CI=true).
set -euo pipefail
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_chromium: no apt-get here; the headless report test will skip outside CI" >&2
  exit 0
fi
SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    echo "setup_chromium: not root and no password-less sudo; install chromium by hand" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing chromium with apt-get (once)" >&2
# The package lists may be missing or stale on a fresh machine: update once, then install.
if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
  "${SUDO[@]}" apt-get update -qq >/dev/null
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null
