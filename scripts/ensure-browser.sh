#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed at /usr/bin/chromium, for the
# browser tests (tests/web/test_browser.py).  Does nothing when it is already there;
# otherwise installs Debian's `chromium` package, non-interactively, with sudo only
# when not running as root.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "chromium  ok  $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "error: $CHROMIUM is missing and this is not a Debian/Ubuntu machine (no apt-get);" >&2
  echo "       install Chromium so that $CHROMIUM runs, then re-run the tests" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo -n)
else
  echo "error: $CHROMIUM is missing; installing it needs root, and sudo is not available" >&2
  echo "       run as root: apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi

echo "chromium  installing Debian's chromium package (headless browser for the browser tests)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium

if [ ! -x "$CHROMIUM" ]; then
  echo "error: the chromium package installed, but $CHROMIUM is still missing" >&2
  exit 1
fi
echo "chromium  ok  $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
