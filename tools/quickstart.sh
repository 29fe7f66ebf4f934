#!/usr/bin/env bash
# The README's first command: on a fresh Debian 12 machine, installs what the project needs,
# builds it, and runs the main job on an embedded default.
#
# The main job: tools/demo.sh, a whole BEST system on this machine with throwaway parts (a
# SoftHSM token, a SQLite store, an isolated pcscd with the virtual USIM best-vusim, best-hsed,
# a stand-in EAS on the sink sockets) and a device session through the card: 5G AKA, uplink and
# downlink data, a key refresh, then a resumption with the refreshed key set. Needs root (apt,
# and pcscd in its own mount namespace); everything it starts is stopped at the end or on
# Ctrl-C. The first run builds the project (several minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "quickstart: needs root (apt, and pcscd in its own mount namespace): sudo $0" >&2
    exit 1
fi
mapfile -t packages < <(grep -v '^#' tools/debian-packages.txt | grep -v '^$')
export DEBIAN_FRONTEND=noninteractive
echo "== installing the Debian packages of tools/debian-packages.txt"
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null

echo "== building (meson + ninja in ./build)"
[ -d build ] || meson setup build --auto-features=enabled >/dev/null
ninja -C build >/dev/null
exec tools/demo.sh build
