#!/usr/bin/env bash
# Installs the Debian packages Orbis needs on this machine (run as root). Skips what is there.
set -euo pipefail
need=()
# chromium: the browser tests drive Debian's build through Playwright (no browser download)
# nftables: scripts/engine.sh installs the link-local guard with nft (iptables-nft has no nft)
# iptables: scripts/engine.sh keeps netavark's isolation on and bridged frames out of NAT
for pair in podman:podman runc:runc debootstrap:debootstrap ssh:openssh-client curl:curl chromium:chromium \
            nft:nftables iptables:iptables; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# netavark: podman's network backend here (scripts/containers.conf says why); aardvark-dns
# answers names on networks made through the Docker-compatible API (DNS on by default there)
for helper in netavark aardvark-dns; do
  [ -x "/usr/lib/podman/$helper" ] || need+=("$helper")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
