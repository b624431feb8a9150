#!/usr/bin/env bash
# Build the local node image orbis-node:<recipe-hash> (and tag orbis-node:latest) without any
# registry: debootstrap a minimal Debian bookworm with systemd + sshd, then `podman import` it.
#
# The recipe hash covers this script, packages.txt and the host CA certificates copied in, so
# the image is rebuilt only when one of them changes; otherwise this exits at once.
#
# Env: ORBIS_HOME (default <repo>/.orbis), ORBIS_IMAGE_REPO (default orbis-node),
#      DEBIAN_MIRROR (default: first Debian mirror of the host's apt sources).
# Usage: images/node/build.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export ORBIS_HOME="${ORBIS_HOME:-$repo/.orbis}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$repo/scripts/containers.conf}"
image_repo="${ORBIS_IMAGE_REPO:-orbis-node}"
suite=bookworm
force=0
[[ "${1:-}" == "--force" ]] && force=1

log() { echo "build.sh: $*" >&2; }

# One build at a time per home: parallel test workers may all ask at once (debootstrap's
# package cache is shared); a second caller waits here, then finds the image cached.
mkdir -p "$ORBIS_HOME/build"
exec 9>"$ORBIS_HOME/build/.build.lock"
flock 9

# Host CA certificates: containers' HTTPS goes through a re-signing proxy, so nodes must trust
# the host's own CAs. They are part of the recipe (a new CA means a new image).
shopt -s nullglob
ca_certs=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob

recipe_hash="$(cat "$here/build.sh" "$here/packages.txt" ${ca_certs[@]+"${ca_certs[@]}"} \
    | sha256sum | cut -c1-12)"
tag="$image_repo:$recipe_hash"

if [[ $force == 0 ]] && podman image exists "$tag"; then
    podman tag "$tag" "$image_repo:latest"
    log "$tag is up to date (cached), nothing to build"
    echo "$tag"
    exit 0
fi

command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
[[ $(id -u) == 0 ]] || { log "must run as root (debootstrap, chroot)"; exit 1; }

# The host's configured Debian mirror (deb822 "URIs:" or one-line "deb URL suite"), not -security.
find_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        grep -hoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+' "$f" \
            | grep -oE '[a-z]+://[^[:space:]]+' | grep -E '/debian/?$' || true
    done | head -n1
}
mirror="${DEBIAN_MIRROR:-$(find_mirror)}"
mirror="${mirror:-http://deb.debian.org/debian}"

packages="$(sed -e 's/#.*//' "$here/packages.txt" | tr -s ' \t\n' '\n' | grep -v '^$' | paste -sd, -)"

mkdir -p "$ORBIS_HOME/build/debs"
rootfs="$(mktemp -d "$ORBIS_HOME/build/rootfs.XXXXXX")"
cleanup() {
    # debootstrap mounts proc/sys inside; never rm -rf through a live mount.
    local m
    for m in $(awk -v r="$rootfs" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" || true
    done
    rm -rf --one-file-system "$rootfs"
}
trap cleanup EXIT

start=$(date +%s)
log "building $tag from $mirror ($packages)"
debootstrap --variant=minbase --include="$packages" --cache-dir="$ORBIS_HOME/build/debs" \
    "$suite" "$rootfs" "$mirror" >"$ORBIS_HOME/build/debootstrap.log" 2>&1 \
    || { tail -n 30 "$ORBIS_HOME/build/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }

in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

# Trust the host's CAs.
if ((${#ca_certs[@]})); then
    cp "${ca_certs[@]}" "$rootfs/usr/local/share/ca-certificates/"
fi
in_root update-ca-certificates >/dev/null 2>&1

# Apt inside nodes: same mirror + updates + security, no recommends, no docs.
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
EOF
cat >"$rootfs/etc/apt/apt.conf.d/90orbis" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90orbis-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF

# SSH: keys only for root; each container makes its own host keys on first boot (the image
# must not ship one shared host key). ed25519 + ecdsa only: RSA generation would delay SSH.
rm -f "$rootfs"/etc/ssh/ssh_host_*
cat >"$rootfs/etc/ssh/sshd_config.d/orbis.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
UseDNS no
EOF
cat >"$rootfs/etc/systemd/system/orbis-ssh-hostkeys.service" <<'EOF'
[Unit]
Description=Generate this node's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key

[Install]
WantedBy=ssh.service
EOF
install -d -m 0700 "$rootfs/root/.ssh"
in_root systemctl enable ssh.service orbis-ssh-hostkeys.service >/dev/null 2>&1

# Units that are useless or slow in a container (no consoles, devices, kernel modules,
# hardware clock) or that would grab the apt lock while Ansible runs.
mask=(
    getty.target console-getty.service getty@tty1.service serial-getty@.service
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
    systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service
    systemd-networkd-wait-online.service systemd-modules-load.service kmod-static-nodes.service
    systemd-remount-fs.service systemd-firstboot.service systemd-timesyncd.service
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
    sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer e2scrub_all.timer
    e2scrub_reap.service
    # Boot work a container never needs (docs/local-backend.md, measured: a node's boot took
    # 0.39 s of CPU, 0.21 s without these and the generators below): the journal lives on the
    # engine's tmpfs anyway (nothing to flush), users are made at build time, no utmp records,
    # /dev comes from the engine, no pstore, TPM, binfmt, repart, audit, password agents,
    # initctl FIFO, random seed file or machine-id commit.
    systemd-journal-flush.service systemd-sysusers.service systemd-update-utmp.service
    systemd-update-utmp-runlevel.service systemd-tmpfiles-setup-dev.service
    systemd-pstore.service systemd-pcrphase.service systemd-pcrphase-sysinit.service
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-repart.service
    systemd-journald-audit.socket systemd-ask-password-wall.path
    systemd-ask-password-console.path systemd-initctl.socket systemd-random-seed.service
    systemd-machine-id-commit.service
)
for unit in "${mask[@]}"; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# Generators of disks, consoles and kernel command lines a container has none of (fstab's and
# System V scripts' stay: a recipe may add a mount or an init script).
install -d "$rootfs/etc/systemd/system-generators"
for generator in cryptsetup debug getty gpt-auto hibernate-resume integritysetup run \
    system-update veritysetup; do
    ln -sf /dev/null "$rootfs/etc/systemd/system-generators/systemd-$generator-generator"
done
# D-Bus and logind on demand, not at every boot: nothing of a node needs them until asked
# (hostnamectl, loginctl: the bus activates them); sshd's PAM has no pam_systemd here.
rm -f "$rootfs"/usr/lib/systemd/system/multi-user.target.wants/dbus.service \
    "$rootfs"/usr/lib/systemd/system/multi-user.target.wants/systemd-logind.service

# Slurm for elastic clusters and the catalogue's Slurm (docs/elastic.md): a worker that joins
# must not wait for apt. Installed with apt after debootstrap (munge's maintainer scripts fail
# inside debootstrap's own configuration pass); nothing of it runs until a recipe sets a
# cluster up, and no munge key is shipped: one key in the image would be every cluster's key.
slurm_packages=(slurmd slurmctld slurm-client munge)
mount --bind /proc "$rootfs/proc" 2>/dev/null || true
# munge's postinst makes a key as the munge user through su, which this build's chroot cannot
# run: a placeholder makes it skip that (removed below)
install -d "$rootfs/etc/munge" && : >"$rootfs/etc/munge/munge.key"
{ in_root apt-get update -q && in_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends "${slurm_packages[@]}"; } \
    >"$ORBIS_HOME/build/apt-slurm.log" 2>&1 \
    || { tail -n 30 "$ORBIS_HOME/build/apt-slurm.log" >&2; log "installing Slurm failed"; exit 1; }
umount "$rootfs/proc" 2>/dev/null || true
rm -f "$rootfs/etc/munge/munge.key"
in_root systemctl disable munge.service slurmd.service slurmctld.service >/dev/null 2>&1 || true

# A fresh machine-id per container: an empty file makes systemd generate one at boot.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"

# Small: no package caches, indexes, docs or logs.
in_root apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
    "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/debootstrap

log "importing"
tar --numeric-owner -C "$rootfs" -c . \
    | podman import --quiet --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
        --change 'ENV container=podman' \
        --message "orbis node image, recipe $recipe_hash" - "$tag" >/dev/null
podman tag "$tag" "$image_repo:latest"
# Drop images of older recipes (podman refuses, harmlessly, while a container still uses one).
podman images --format '{{.Repository}}:{{.Tag}}' \
    | grep -E "(^|/)$image_repo:[0-9a-f]{12}\$" | grep -v ":$recipe_hash\$" \
    | xargs -r podman rmi >/dev/null 2>&1 || true
log "built $tag in $(( $(date +%s) - start ))s ($(podman image inspect --format '{{.Size}}' "$tag") bytes)"
echo "$tag"
