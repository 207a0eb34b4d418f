#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (Playwright cannot download its own).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
echo "Chromium is not installed: installing Debian's package with apt (needs root)"
apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
