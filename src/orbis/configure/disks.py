#!/usr/bin/env python3
"""Format and mount a node's data disks. Runs ON the node (python3, util-linux, e2fsprogs),
copied there by the configuration's first step; standard library only.

IM formats and mounts a data disk whose template gives a mount path (TOSCA `location`, RADL
`disk.N.mount_path` with `fstype`). Clouds name the devices their own way (vdb on KVM, xvdb on
Xen, nvme1n1 on AWS Nitro), so a disk is found by, in order: the mount path already mounted
(the local back-end's volumes, a second run), the volume id in the disk's serial, the
template's device letter, the disk's size, and otherwise the next unused disk. A disk that
already holds a file system is mounted as it is, never formatted. Run twice, it changes nothing.

Argument: JSON list of {"index", "size" (bytes), "device", "volume_id", "fs_type", "mount_path"}.
Prints one JSON line {"changed": bool, "disks": [{"index", "device", "action"}]}; exits 1 with
the reason on stderr when a disk cannot be found or mounted.

ORBIS_DISKS_ONLY (comma-separated device paths) limits the disks it may touch; loop devices
count as disks then (tests use it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

GIB = 1024**3
STATE = "/var/lib/orbis/disks.json"  # disk index -> file system UUID, of what earlier runs did
RECORD: dict[str, str] = {}


def run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def mounted() -> dict[str, str]:
    """Mount point -> source device, from the kernel's own table."""
    points: dict[str, str] = {}
    with open("/proc/self/mountinfo") as table:
        for line in table:
            fields = line.split()
            after = fields.index("-")
            point = fields[4].replace("\\040", " ")
            points[point] = fields[after + 2]
    return points


def swaps() -> set[str]:
    with open("/proc/swaps") as table:
        return {line.split()[0] for line in table.readlines()[1:] if line.strip()}


def disks(only: list[str]) -> list[dict[str, Any]]:
    """Whole disks nobody uses: no partitions, not mounted, not swap."""
    tree = json.loads(run("lsblk", "-J", "-b", "-p", "-o",
                          "NAME,TYPE,SIZE,FSTYPE,MOUNTPOINT,SERIAL"))["blockdevices"]  # fmt: skip
    active = swaps()
    free = []
    for dev in tree:
        name = dev["name"]
        if only and name not in only:
            continue
        if dev.get("type") != "disk" and not (only and dev.get("type") == "loop"):
            continue
        if dev.get("children") or dev.get("mountpoint") or name in active:
            continue
        if not os.path.exists(name):  # a container sees the host's disks in sysfs only
            continue
        free.append(dev)
    return sorted(free, key=lambda d: d["name"])


def _plain(text: str | None) -> str:
    return re.sub(r"[^0-9a-z]", "", (text or "").lower())


def choose(volume: dict[str, Any], free: list[dict[str, Any]]) -> dict[str, Any] | None:
    volume_id = _plain((volume.get("volume_id") or "").rstrip("/").rsplit("/", 1)[-1])
    if volume_id:  # virtio: the first 20 characters of the id; EBS on NVMe: "vol0123..."
        for dev in free:
            serial = _plain(dev.get("serial"))
            if len(serial) >= 8 and (volume_id.startswith(serial) or serial.startswith(volume_id)):
                return dev
    hint = (volume.get("device") or "").rsplit("/", 1)[-1]
    if hint and not hint.startswith("nvme"):
        pattern = re.compile(rf"(x?vd|sd|hd){re.escape(hint[-1])}")
        for dev in free:
            if pattern.fullmatch(dev["name"].rsplit("/", 1)[-1]):
                return dev
    size = volume.get("size")
    if size:
        wanted = {int(size), -(-int(size) // GIB) * GIB}  # clouds round volumes up to GiB
        for dev in free:
            if int(dev.get("size") or 0) in wanted:
                return dev
    return free[0] if free else None


def fs_uuid(device: str) -> tuple[str, str]:
    """(file system type, UUID) of a device as it is now ("" when blank)."""
    done = subprocess.run(["blkid", "-p", "-o", "export", device], capture_output=True, text=True)
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return found.get("TYPE", ""), found.get("UUID", "")


def fstab_has(field: int, value: str) -> bool:
    """Whether /etc/fstab has a line whose `field` (0: source, 1: mount point) is `value`."""
    try:
        with open("/etc/fstab") as table:
            rows = [line.split() for line in table if not line.lstrip().startswith("#")]
    except FileNotFoundError:
        return False
    return any(len(row) > field and row[field] == value for row in rows)


def swap_done(volume: dict[str, Any]) -> str | None:
    """The device of a swap disk an earlier run made and is on now (active swap is no longer a
    free disk, so it cannot be found again the other ways)."""
    uuid = RECORD.get(str(volume.get("index")))
    if not uuid:
        return None
    done = subprocess.run(["blkid", "-U", uuid], capture_output=True, text=True)
    device = done.stdout.strip()
    return device if device and device in swaps() else None


def prepare(volume: dict[str, Any], free: list[dict[str, Any]]) -> dict[str, Any]:
    index, point = volume.get("index"), volume.get("mount_path")
    swap = (volume.get("fs_type") or "").lower() == "swap"
    if point and not swap and point in mounted():
        return {"index": index, "device": mounted()[point], "action": "already mounted"}
    if swap and (device := swap_done(volume)):
        return {"index": index, "device": device, "action": "already mounted"}
    dev = choose(volume, free)
    if dev is None:
        raise RuntimeError(f"disk {index}: no unused disk found for it (mount path {point})")
    free.remove(dev)
    device = dev["name"]
    fs_type, uuid = fs_uuid(device)
    actions = []
    if not fs_type:
        wanted = "swap" if swap else (volume.get("fs_type") or "ext4").lower()
        if not re.fullmatch(r"[a-z0-9]+", wanted):
            raise RuntimeError(f"disk {index}: {wanted!r} is not a file system type")
        if swap:
            run("mkswap", device)
        elif wanted.startswith("ext"):
            run(f"mkfs.{wanted}", "-F", "-q", device)
        else:
            run(f"mkfs.{wanted}", device)
        actions.append(f"formatted {wanted}")
        fs_type, uuid = fs_uuid(device)
    source = f"UUID={uuid}" if uuid else device
    if fs_type == "swap":
        if not fstab_has(0, source):
            with open("/etc/fstab", "a") as table:
                table.write(f"{source} none swap sw,nofail 0 0\n")
        run("swapon", device)
        actions.append("swap on")
    else:
        if not point:
            raise RuntimeError(f"disk {index}: {device} holds {fs_type}, which needs a mount path")
        os.makedirs(point, exist_ok=True)
        if not fstab_has(1, point):
            with open("/etc/fstab", "a") as table:
                table.write(f"{source} {point} {fs_type} defaults,nofail 0 2\n")
        run("mount", point)
        actions.append(f"mounted on {point}" + ("" if actions else f" (existing {fs_type})"))
    if uuid:
        RECORD[str(index)] = uuid
    return {"index": index, "device": device, "action": ", ".join(actions)}


def main(argv: list[str]) -> int:
    volumes = sorted(json.loads(argv[1]), key=lambda v: int(v.get("index") or 0))
    only = [d for d in os.environ.get("ORBIS_DISKS_ONLY", "").split(",") if d]
    done = []
    try:
        with open(STATE) as saved:
            RECORD.update(json.load(saved))
    except (OSError, ValueError):
        pass
    try:
        free = disks(only)
        for volume in volumes:
            done.append(prepare(volume, free))
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"data disks: {exc}", file=sys.stderr)
        print(json.dumps({"changed": bool(done), "disks": done}))
        return 1
    finally:
        os.makedirs(os.path.dirname(STATE), exist_ok=True)
        with open(STATE, "w") as saved:
            json.dump(RECORD, saved)
    changed = any(d["action"] != "already mounted" for d in done)
    print(json.dumps({"changed": changed, "disks": done}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
