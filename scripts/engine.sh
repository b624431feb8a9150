#!/usr/bin/env bash
# Ensure a Docker-compatible Engine API for the local back-end.
#
#   scripts/engine.sh start    use a live Docker daemon at /var/run/docker.sock if there is one,
#                              else run `podman system service` on $ORBIS_HOME/run/podman.sock
#   scripts/engine.sh stop     stop the podman service started here (never a Docker daemon)
#   scripts/engine.sh status   exit 0 if an engine answers
#   scripts/engine.sh guard    only (re)install the host firewall table below
#   scripts/engine.sh rules    only (re)set the iptables rules netavark needs (below)
#
# start and status print the DOCKER_HOST URL to use on the last line of stdout.
# Idempotent: a second start reuses the running service; a stale pid file is detected.
#
# start first installs scripts/linklocal-guard.nft (nftables table inet orbis_guard): no
# container on an Orbis bridge reaches a link-local address (the cloud metadata service)
# through this host. It fails if the table cannot be installed (needs root and nft, from
# scripts/setup-host.sh); ORBIS_ENGINE_UNGUARDED=1 skips it, with a warning. stop leaves the
# table: it matches only Orbis bridges, which other services on this host may still have.
# Before starting podman it also sets the iptables rules netavark needs (netavark_rules below:
# isolation that stays, no NAT for bridged frames); they stay too.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
ORBIS_HOME="${ORBIS_HOME:-$repo/.orbis}"
run_dir="$ORBIS_HOME/run"
sock="$run_dir/podman.sock"
pid_file="$run_dir/podman.pid"
log_file="$run_dir/podman.log"
docker_sock=/var/run/docker.sock
guard_file="$here/linklocal-guard.nft"
wait_seconds="${ORBIS_ENGINE_WAIT:-30}"

log() { echo "engine.sh: $*" >&2; }

# True if the Engine API on this unix socket answers /_ping with OK.
pings() {
    [[ -S $1 ]] && [[ "$(curl -s --max-time 3 --unix-socket "$1" http://d/_ping 2>/dev/null)" == OK ]]
}

# Pid of our podman service, if the pid file names a live podman process. Used to reuse or stop
# a running service (the cmdline check guards against a recycled pid), never to decide readiness:
# right after the fork the child is still bash, not yet podman.
live_pid() {
    local pid
    [[ -r $pid_file ]] || return 1
    pid="$(cat "$pid_file")"
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && grep -q podman "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

# True while this process exists: the only thing the pid tells while waiting for readiness.
alive() { kill -0 "$1" 2>/dev/null; }

show_log() {
    log "last lines of $log_file:"
    tail -n 20 "$log_file" >&2 || true
}

# Install the link-local guard (one atomic nft transaction: idempotent, safe to run while
# other services of this host use it). Before any engine is used, so no node runs unguarded.
guard() {
    if [[ ${ORBIS_ENGINE_UNGUARDED:-} == 1 ]]; then
        log "WARNING: ORBIS_ENGINE_UNGUARDED=1: containers may reach the cloud metadata" \
            "service (169.254.169.254) and its instance credentials through this host"
        return 0
    fi
    local nft
    nft="$(command -v nft || command -v /usr/sbin/nft || true)"  # sbin: not on every PATH
    [[ -n $nft ]] \
        || { log "nft is missing (Debian package nftables: run scripts/setup-host.sh)"; exit 1; }
    if ! "$nft" -f "$guard_file"; then
        log "could not install $guard_file (needs root); ORBIS_ENGINE_UNGUARDED=1 skips it"
        exit 1
    fi
}

# iptables (iptables-nft; podman's rules are iptables rules too), or exit saying what is missing.
ipt() {
    local bin
    bin="$(command -v iptables || command -v /usr/sbin/iptables || true)"
    [[ -n $bin ]] || { log "iptables is missing (run scripts/setup-host.sh)"; exit 1; }
    "$bin" -w "$@"
}

# Iptables rules netavark (podman's network backend, scripts/containers.conf) needs here, set
# once, before podman starts; see docs/local-backend.md#network-backend.
# 1. Isolation that stays: every isolated network's rules hang off one jump,
#    FORWARD -j NETAVARK_ISOLATION_1, and netavark 1.4 deletes that jump whenever one isolated
#    network loses its last container, leaving every other network unisolated until a container
#    starts on an isolated network again. Ours carries a comment, so netavark's deletion (by
#    the exact rule) never matches it. It must come before netavark's
#    FORWARD -j NETAVARK_FORWARD, whose chain accepts everything a network's subnet sends, and
#    netavark inserts that jump first in FORWARD when it is missing: so it is made here, after
#    ours, in netavark's own words (netavark then finds it, and never deletes it). The chains
#    are made here if netavark has not made them yet.
# 2. No NAT for frames a bridge forwards between two of its own ports: iptables sees bridged
#    frames here (bridge-nf-call-iptables), and podman's masquerade rule rewrote the source of
#    overlay traffic a site's router forwards on its own bridge; the reply then came back
#    through the host across two isolated bridges and was dropped. Routed traffic is NATed.
netavark_rules() {
    local mark="orbis: isolated networks stay isolated"
    local keep=(FORWARD -m comment --comment "$mark" -j NETAVARK_ISOLATION_1)
    local accept=(FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD)
    local unnat=(POSTROUTING -m physdev --physdev-is-bridged -j ACCEPT)
    local chain n
    for chain in NETAVARK_ISOLATION_1 NETAVARK_FORWARD; do
        ipt -n -L "$chain" >/dev/null 2>&1 || ipt -N "$chain" \
            || { log "could not make chain $chain (needs root)"; exit 1; }
    done
    # ours first (a copy further down, from an older start, goes once the first is in place)
    [[ "$(ipt -S FORWARD 2>/dev/null | sed -n 2p)" == *"$mark"* ]] \
        || ipt -I "${keep[0]}" 1 "${keep[@]:1}" \
        || { log "could not keep isolated networks isolated (needs root)"; exit 1; }
    while n="$(ipt -n -L FORWARD --line-numbers | awk -v m="$mark" \
                   'index($0, m) && $1 > 1 { print $1; exit }')" && [[ -n $n ]]; do
        ipt -D FORWARD "$n"
    done
    ipt -C "${accept[@]}" 2>/dev/null || ipt -I "${accept[0]}" 2 "${accept[@]:1}" \
        || { log "could not place netavark's forward rules after ours (needs root)"; exit 1; }
    ipt -t nat -C "${unnat[@]}" 2>/dev/null || ipt -t nat -I "${unnat[0]}" 1 "${unnat[@]:1}" \
        || { log "could not exempt bridged frames from NAT (needs root)"; exit 1; }
}

start() {
    guard
    if pings "$docker_sock" && ! pings "$sock"; then
        log "using the Docker daemon at $docker_sock"
        echo "unix://$docker_sock"
        return 0
    fi
    netavark_rules
    mkdir -p "$run_dir"
    local pid
    if pid="$(live_pid)"; then
        if pings "$sock"; then
            log "podman service already running (pid $pid)"
            echo "unix://$sock"
            return 0
        fi
        log "podman service pid $pid does not answer yet; waiting"
    else
        if [[ -e $pid_file ]]; then log "removing stale pid file"; fi
        rm -f "$pid_file" "$sock"
        command -v podman >/dev/null || { log "neither Docker nor podman is available"; exit 1; }
        # setsid: the service outlives this script and the caller's process group.
        CONTAINERS_CONF="$repo/scripts/containers.conf" \
            setsid podman system service --time=0 "unix://$sock" \
            </dev/null >>"$log_file" 2>&1 &
        pid=$!
        echo "$pid" >"$pid_file"
        log "started podman service (pid $pid, log $log_file)"
    fi
    # Ready means answering /_ping, within the deadline; the pid only tells that it died.
    local deadline=$((SECONDS + wait_seconds))
    until pings "$sock"; do
        if ! alive "$pid"; then
            log "podman service (pid $pid) exited without answering on $sock"
            show_log
            rm -f "$pid_file"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "podman service (pid $pid) did not answer on $sock within ${wait_seconds}s" \
                "(ORBIS_ENGINE_WAIT)"
            show_log
            exit 1
        fi
        sleep 0.1
    done
    echo "unix://$sock"
}

stop() {
    local pid
    if pid="$(live_pid)"; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        log "stopped podman service (pid $pid)"
    else
        log "podman service not running"
    fi
    rm -f "$pid_file" "$sock"
}

status() {
    if pings "$sock"; then
        log "podman service answers (pid $(cat "$pid_file" 2>/dev/null || echo '?'))"
        echo "unix://$sock"
    elif pings "$docker_sock"; then
        log "Docker daemon answers"
        echo "unix://$docker_sock"
    else
        log "no engine answers"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    guard) guard ;;
    rules) netavark_rules ;;
    *) echo "usage: $0 start|stop|status|guard|rules" >&2; exit 2 ;;
esac
