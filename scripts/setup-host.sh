#!/usr/bin/env bash
# Installs the Debian packages Orbis needs on this machine (run as root). Skips what is there.
set -euo pipefail
need=()
# chromium: the browser tests drive Debian's build through Playwright (no browser download)
# nftables: scripts/engine.sh installs the link-local guard with nft (iptables-nft has no nft)
for pair in podman:podman runc:runc debootstrap:debootstrap ssh:openssh-client curl:curl chromium:chromium \
            nft:nftables; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
