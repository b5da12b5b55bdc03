#!/usr/bin/env bash
# Prepares a headless Wine prefix that runs conn's x86_64-pc-windows-gnu test binaries:
#   WINEPREFIX=/abs/path bash xtask/wine/prepare.sh
# - starts a persistent wineserver and the prefix's services with stdio on /dev/null (they
#   inherit stdout otherwise, and a captured test run would wait for them forever);
# - creates the prefix on first use (`wineboot --init`, about 7 s);
# - installs the ProcessPrng shim (bcryptprimitives.c) when Wine lacks bcryptprimitives.dll.
# Stop the server afterwards with `wineserver -k`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${WINEPREFIX:?set WINEPREFIX to an absolute path}"
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
mkdir -p "$WINEPREFIX"
# Fails harmlessly when this prefix's server is already running.
wineserver -p </dev/null >/dev/null 2>&1 || true
wine wineboot --init </dev/null >/dev/null 2>&1
dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -e "$dll" ]; then
  x86_64-w64-mingw32-gcc -O2 -shared -s -o "$dll" "$here/bcryptprimitives.c" -ladvapi32
fi
