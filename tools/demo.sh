#!/usr/bin/env bash
# demo.sh: BEST end to end on one machine, with everything it needs made up on the spot and
# removed afterwards. Called by tools/quickstart.sh once the build is done; run it by hand with
#
#   sudo tools/demo.sh [BUILD_DIR]          (default BUILD_DIR: build)
#
# It
#   1. makes a throwaway SoftHSM token (its own SOFTHSM2_CONF) and SQLite store in a temporary
#      directory, and fresh random K and OPc for one demo subscriber (files of mode 0600, never
#      printed);
#   2. provisions the token keys, an EAS and the subscriber with best-hsectl;
#   3. starts an isolated pcscd (tools/rig/pcsc-rig.sh: own mount namespace, the system pcscd
#      and any real reader untouched) with best-vusim as the USIM, holding the same K and OPc;
#   4. starts best-hsed on 127.0.0.1 (a free port) and a stand-in EAS on its UNIX sink sockets
#      that answers every uplink payload with a downlink "echo: ...";
#   5. runs best-ue session twice: a full 5G AKA establishment through the card, uplink and
#      downlink data, a UE-triggered key refresh, termination; then a second session that
#      resumes with the refreshed key set, without AKA;
#   6. prints what happened (no key material) and, at the end or on Ctrl-C, stops everything it
#      started (by PID) and deletes the directory (BEST_DEMO_KEEP=1 keeps it).
# Needs root (the pcscd mount namespace), softhsm2, pcscd, vsmartcard-vpcd and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac

hsectl=$build/tools/best-hsectl/best-hsectl
hsed=$build/tools/best-hsed/best-hsed
vusim=$build/tools/best-vusim/best-vusim
ue=$build/tools/best-ue/best-ue
rig=$root/tools/rig/pcsc-rig.sh

say() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

for p in "$hsectl" "$hsed" "$vusim" "$ue"; do
    [ -x "$p" ] || die "$p is missing: build first (meson setup $build && ninja -C $build)"
done
[ "$(id -u)" = 0 ] || die "needs root (pcscd runs in its own mount namespace)"
command -v softhsm2-util >/dev/null || die "softhsm2-util not found (apt install softhsm2)"
command -v python3 >/dev/null || die "python3 not found"

work=$(mktemp -d /tmp/best-demo.XXXXXX)
chmod 700 "$work"
pids=()
cleanup() {
    local rc=$?
    trap - EXIT
    trap '' INT TERM  # a second Ctrl-C must not cut the cleanup short
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        local pid=${pids[i]}
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    [ -d "$work/rig" ] && "$rig" stop "$work/rig" || true
    if [ "${BEST_DEMO_KEEP:-0}" = 1 ]; then
        echo "demo: kept $work (it holds the demo keys: delete it when done)"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, stopping everything"; exit 130' INT TERM

imsi=001010000000001
eas=demo-eas
umask 077

say "1. a throwaway SoftHSM token and SQLite store in $work"
mkdir -p "$work/tokens"
cat > "$work/softhsm2.conf" <<EOF
directories.tokendir = $work/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF=$work/softhsm2.conf
pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
sopin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$pin" > "$work/pin"
# softhsm2-util takes PINs only as arguments; this token lives for the demo only.
softhsm2-util --init-token --free --label best-demo --pin "$pin" --so-pin "$sopin" >/dev/null
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$work/k"
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$work/opc"
echo "token 'best-demo', random K and OPc for subscriber $imsi (files of mode 0600, not shown)"

cat > "$work/hsed.yaml" <<EOF
hse_id: hse.demo.example
listen:
  - address: 127.0.0.1
    port: 0
runtime_file: $work/ports
hsm:
  module: /usr/lib/softhsm/libsofthsm2.so
  token: best-demo
  pin_file: $work/pin
  workers: 2
store:
  path: $work/state.db
policy:
  key_set_lifetime: 3600
sink:
  uplink: $work/uplink.sock
  downlink: $work/downlink.sock
logging:
  level: notice
EOF

say "2. provisioning with best-hsectl"
"$hsectl" --config "$work/hsed.yaml" init | sed 's/^/   /'
"$hsectl" --config "$work/hsed.yaml" eas add --eas-id "$eas" --mode ue-to-hse | sed 's/^/   /'
"$hsectl" --config "$work/hsed.yaml" subscriber add --imsi "$imsi" --k-file "$work/k" \
    --opc-file "$work/opc" --amf 8000 --eas "$eas" | sed 's/^/   /'

say "3. an isolated pcscd with best-vusim as the USIM"
"$rig" start "$work/rig" > "$work/rig.env"
export PCSCLITE_CSOCK_NAME=$work/rig/run/pcscd/pcscd.comm
vpcd_port=$(cat "$work/rig/port")
cat > "$work/vusim.yaml" <<EOF
vpcd:
  host: 127.0.0.1
  port: $vpcd_port
card:
  imsi: "$imsi"
  response_style: direct
subscriber:
  k: $(cat "$work/k")
  opc: $(cat "$work/opc")
sqn:
  state_file: $work/sqn.state
EOF
"$vusim" --config "$work/vusim.yaml" > "$work/vusim.log" 2>&1 &
echo $! > "$work/rig/vusim.pid"
pids+=("$!")
echo "   pcscd (its own mount namespace), reader 'BEST vusim 00 00', vpcd port $vpcd_port"

say "4. best-hsed and a stand-in EAS on its sink sockets"
python3 - "$work/uplink.sock" "$work/downlink.sock" > "$work/eas.log" 2>&1 <<'PY' &
import os, socket, sys
up, down = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(up)
while True:
    frame = s.recv(2048)
    sid, payload = frame[:4], frame[4:]
    print("EAS: uplink in session 0x%s: %r" % (sid.hex(), payload.decode(errors="replace")), flush=True)
    s.sendto(sid + b"echo: " + payload, down)
PY
pids+=("$!")
"$hsed" --config "$work/hsed.yaml" > "$work/hsed.log" 2>&1 &
pids+=("$!")
for _ in $(seq 150); do
    grep -q '^emsdp ' "$work/ports" 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || die "best-hsed exited: $(cat "$work/hsed.log")"
    sleep 0.1
done
read -r _ hse_addr hse_port < <(grep '^emsdp ' "$work/ports" | head -1) ||
    die "best-hsed did not start: $(cat "$work/hsed.log")"
echo "   best-hsed (HSE Id hse.demo.example) on $hse_addr port $hse_port"

cat > "$work/ue.yaml" <<EOF
hse:
  address: 127.0.0.1
  port: $hse_port
  hse_id: hse.demo.example
eas_id: $eas
serving_network: {mcc: "001", mnc: "01"}
key_agreements: [5g]
state_file: $work/ue.state
control_socket: $work/ue.sock
usim:
  source: pcsc
  reader: "BEST vusim*"
logging:
  level: warning
EOF

# best-ue in the background and `wait`: a signal to this script then acts at once.
run_ue() {
    "$ue" "$@" > >(sed -u 's/^/   /') 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait "$pid"
}

say "5. best-ue session: 5G AKA through the card, data both ways, key refresh, termination"
run_ue session --config "$work/ue.yaml" --send "hello from the UE" --recv 1 --refresh \
    --terminate --timeout 60

say "6. best-ue session again: resumption with the refreshed key set (no AKA, no card)"
run_ue session --config "$work/ue.yaml" --send "second session" --recv 1 --terminate --timeout 60
sleep 0.2  # let the EAS print its last line

say "what the stand-in EAS saw"
sed 's/^/   /' "$work/eas.log"
say "done: stopping best-hsed, best-vusim, pcscd and the EAS, deleting $work"
