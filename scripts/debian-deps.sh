#!/usr/bin/env bash
# Run by `make test` before pytest: the browser test of the connection form needs Debian's
# `chromium` (driven by the `playwright` package of the test extra; Playwright's own browser
# download is never used). Installs it the way .ci/run does when it can (root and apt-get);
# otherwise leaves it to the test, which is then left out with one line naming the install
# command (or fails, under MSADS_REQUIRE_BROWSER=1, as in .ci/run). Never fails `make test` by itself.
#
# `--package NAME` installs another Debian package the same way (the Makefile uses it for
# python3-venv) and, unlike the browser, fails when it cannot.
set -u
if [ "${1:-}" = "--package" ]; then
  package="$2"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== Installing Debian's $package (apt-get install -y $package) ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "$package" >/dev/null && exit 0
  fi
  echo "!! $package is needed: install it with \`sudo apt-get install -y $package\`, then run make again." >&2
  exit 1
fi
exe="${MSADS_BROWSER_EXECUTABLE:-/usr/bin/chromium}"
[ -x "$exe" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${MSADS_BROWSER_EXECUTABLE:-}" ]; then
  echo "== Installing Debian's chromium for the browser test (apt-get install -y chromium) ..."
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq chromium >/dev/null; then
    exit 0
  fi
  echo "== apt-get could not install chromium; the browser test will be left out."
fi
exit 0
