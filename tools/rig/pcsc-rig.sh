#!/usr/bin/env bash
# pcsc-rig.sh: an isolated pcscd with a vpcd reader, for trying best-vusim by hand. The C++ test
# rig (sim/rig/pcsc_rig.cpp) does the same steps for the test suite and the benchmark.
#
#   pcsc-rig.sh start DIR [PORT]   start pcscd (background) with its state in DIR (created);
#                                  prints the environment for clients and the vpcd port
#   pcsc-rig.sh stop DIR           stop the pcscd (and a best-vusim) recorded in DIR, by PID
#   pcsc-rig.sh pcscd DIR          run that pcscd in the foreground (what start runs)
#
# Isolation, all inside a private mount namespace (unshare -m) that only this pcscd lives in:
#   - DIR/run is bind-mounted over /run, so pcscd's compiled-in socket /run/pcscd/pcscd.comm is
#     DIR/run/pcscd/pcscd.comm and the system pcscd (if any) is untouched; clients use it with
#     PCSCLITE_CSOCK_NAME=DIR/run/pcscd/pcscd.comm;
#   - /usr/lib/pcsc/drivers (USB reader drivers) is covered by an empty tmpfs, so this pcscd never
#     claims a real reader; the vpcd driver is reached through a bind mount at DIR/drivers;
#   - its reader.conf.d (pcscd --config DIR/reader.conf.d) holds one vpcd reader in server mode
#     on PORT (and PORT+1 for vpcd's second slot), listening on 0.0.0.0: firewall these ports.
# Needs root (mount namespaces). Do not use vpcd's reversed mode (DEVICENAME HOST:PORT): it
# aborted pcscd here with "bit out of range 0 - FD_SETSIZE".
set -euo pipefail

vpcd_driver=${BEST_VPCD_DRIVER:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
pcscd=${BEST_PCSCD:-/usr/sbin/pcscd}
usb_drivers=/usr/lib/pcsc/drivers

die() { echo "pcsc-rig: $*" >&2; exit 1; }

free_port_pair() {  # a port P with P and P+1 free
    python3 - <<'PY'
import socket
for _ in range(64):
    a = socket.socket(); a.bind(("0.0.0.0", 0)); p = a.getsockname()[1]
    if p >= 65535: a.close(); continue
    b = socket.socket()
    try:
        b.bind(("0.0.0.0", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
PY
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,9p' "$0" >&2; exit 2; }

case "$cmd" in
start)
    [ -e "$dir/pcscd.pid" ] && die "$dir already has a pcscd (pcsc-rig.sh stop $dir)"
    [ -r "$vpcd_driver" ] || die "vpcd driver $vpcd_driver not found (install vsmartcard-vpcd)"
    port=${3:-$(free_port_pair)}
    mkdir -p "$dir/run" "$dir/drivers" "$dir/reader.conf.d"
    dir=$(cd "$dir" && pwd)
    cat > "$dir/reader.conf.d/vpcd" <<CONF
FRIENDLYNAME "BEST vusim"
DEVICENAME /dev/null:$port
LIBPATH $dir/drivers/$(basename "$vpcd_driver")
CONF
    echo "$port" > "$dir/port"
    setsid "$0" pcscd "$dir" > "$dir/pcscd.log" 2>&1 < /dev/null &
    echo $! > "$dir/pcscd.pid"
    for _ in $(seq 100); do
        [ -S "$dir/run/pcscd/pcscd.comm" ] && break
        kill -0 "$(cat "$dir/pcscd.pid")" 2>/dev/null || die "pcscd exited: $(cat "$dir/pcscd.log")"
        sleep 0.05
    done
    [ -S "$dir/run/pcscd/pcscd.comm" ] || die "pcscd did not start: $(cat "$dir/pcscd.log")"
    echo "export PCSCLITE_CSOCK_NAME=$dir/run/pcscd/pcscd.comm"
    echo "# vpcd port $port: set vpcd.port: $port in the best-vusim config; reader 'BEST vusim 00 00'"
    ;;
pcscd)
    # Re-exec inside a new mount namespace; the same PID becomes pcscd.
    [ "$(id -u)" = 0 ] || die "needs root (mount namespace)"
    exec unshare --mount --propagation private -- "$0" _inside "$dir"
    ;;
_inside)
    mount --bind "$(dirname "$vpcd_driver")" "$dir/drivers"
    mount -t tmpfs -o mode=0755,size=16k,nosuid,nodev,noexec tmpfs "$usb_drivers"
    mount --bind "$dir/run" /run
    exec "$pcscd" --foreground --config "$dir/reader.conf.d"
    ;;
stop)
    for f in vusim.pid pcscd.pid; do
        [ -f "$dir/$f" ] || continue
        pid=$(cat "$dir/$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
        rm -f "$dir/$f"
    done
    ;;
*)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
