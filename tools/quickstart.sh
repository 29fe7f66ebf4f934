#!/usr/bin/env bash
# The README's first command: on a fresh Debian 12 machine, installs what the project needs,
# builds it, and runs the main job on an embedded default.
#
# Today the main job that runs end to end is the home network's half of AKA: best-hsectl
# computes an authentication vector for TS 35.207 test set 1 (an embedded, published test
# subscriber, so its keys may appear on the command line), then plays a USIM
# resynchronisation and recovers SQN_MS from the AUTS. The daemon demo replaces this as the
# daemon lands (see README, "Status").
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
    mapfile -t packages < <(grep -v '^#' tools/debian-packages.txt | grep -v '^$')
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
else
    echo "not root: assuming the Debian packages of tools/debian-packages.txt are installed" >&2
fi

[ -d build ] || meson setup build --auto-features=enabled >/dev/null
ninja -C build >/dev/null
hsectl=build/tools/best-hsectl/best-hsectl

# TS 35.207 test set 1 (published test keys).
K=465b5ce8b199b49faa5f0a2ee238a6bc
OPC=cd63cb71954a9f4e48a5994e37a02baf
RAND=23553cbe9637a89d218ae64dae47bf35
echo "== authentication vector for TS 35.207 test set 1 (SQN ff9bb4d0b607, AMF b9b9)"
"$hsectl" aka-vector --test-keys --k $K --opc $OPC --amf b9b9 --sqn ff9bb4d0b607 --rand $RAND
echo
echo "== the USIM answers with a sync failure; the network recovers SQN_MS from its AUTS"
echo "   (AUTS from the profile's worked example, tests/data/profile-example.txt part 6)"
"$hsectl" aka-vector --test-keys --k $K --opc $OPC --rand $RAND --auts ba853f3c123ccf44e93596e355c6
echo
echo "== a tampered AUTS is refused"
if "$hsectl" aka-vector --test-keys --k $K --opc $OPC --rand $RAND \
        --auts ba853f3c123ccf44e93596e355c7; then
    echo "unexpected: tampered AUTS accepted" >&2
    exit 1
fi
echo
echo "done. Next: 'bash .ci/run' builds and runs every test suite."
