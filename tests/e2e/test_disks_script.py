"""The node-side disk script (orbis/configure/disks.py) on real block devices: loop devices in
a privileged container of the node image stand in for a cloud's volumes. The script may only
touch the devices ORBIS_DISKS_ONLY names, so nothing of the host is ever looked at twice.
(Swap is not exercised here: swapon would change the host kernel's swap.)"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator

import docker
import pytest

from orbis.configure import storage

pytestmark = [pytest.mark.e2e]
MIB = 1024**2


@pytest.fixture(scope="module")
def box(engine_url) -> Iterator[tuple]:
    engine = docker.DockerClient(base_url=engine_url)
    container = engine.containers.run(os.environ["ORBIS_NODE_IMAGE"], ["sleep", "infinity"],
                                       privileged=True, detach=True, remove=True)  # fmt: skip
    loops: list[str] = []
    try:
        data = storage.SCRIPT.read_bytes()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo("disks.py")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        container.put_archive("/usr/local/bin", archive.getvalue())

        def sh(command: str) -> tuple[int, str]:
            code, out = container.exec_run(["sh", "-c", command])
            return code, out.decode()

        for name, size in (("decoy", 64), ("data", 96), ("old", 48)):
            code, out = sh(f"truncate -s {size}M /{name}.img && losetup -f --show /{name}.img")
            assert code == 0, out
            loops.append(out.strip())
        old = loops[2]  # an existing volume: a file system with a file on it
        code, out = sh(f"mkfs.ext4 -q {old} && mkdir -p /m && mount {old} /m && "
                       "echo kept > /m/file && umount /m")  # fmt: skip
        assert code == 0, out
        yield container, sh, dict(zip(("decoy", "data", "old"), loops, strict=True))
    finally:
        for loop in loops:  # only ours: loop devices belong to the whole machine
            container.exec_run(["sh", "-c", f"umount {loop}; losetup -d {loop}"])
        container.stop(timeout=1)


def run(sh, disks: list[dict], only: list[str]) -> tuple[int, dict, str]:
    arg = json.dumps(disks).replace("'", "'\\''")
    code, out = sh(f"ORBIS_DISKS_ONLY={','.join(only)} python3 /usr/local/bin/disks.py "
                   f"'{arg}' 2>/tmp/err; rc=$?; echo; cat /tmp/err; exit $rc")  # fmt: skip
    answer, _, err = out.partition("\n")
    return code, json.loads(answer), err


def test_blank_disk_found_by_size_formatted_and_mounted_once(box):
    _, sh, dev = box
    disk = {"index": 1, "size": 96 * MIB, "mount_path": "/data1", "fs_type": "ext4"}
    code, answer, err = run(sh, [disk], [dev["decoy"], dev["data"]])
    assert code == 0, err
    assert answer == {
        "changed": True,
        "disks": [
            {"index": 1, "device": dev["data"], "action": "formatted ext4, mounted on /data1"}
        ],
    }
    assert sh("mountpoint -q /data1")[0] == 0
    assert sh(f"blkid -p -o value -s TYPE {dev['decoy']}")[1].strip() == ""  # untouched
    uuid = sh(f"blkid -o value -s UUID {dev['data']}")[1].strip()
    assert f"UUID={uuid} /data1 ext4 defaults,nofail 0 2" in sh("cat /etc/fstab")[1]

    code, again, err = run(sh, [disk], [dev["decoy"], dev["data"]])  # a second run: no change
    assert code == 0, err
    assert again == {
        "changed": False,
        "disks": [{"index": 1, "device": dev["data"], "action": "already mounted"}],
    }
    assert sh("grep -c /data1 /etc/fstab")[1].strip() == "1"


def test_an_existing_file_system_is_mounted_not_formatted(box):
    _, sh, dev = box
    disk = {"index": 3, "volume_id": "vol-x", "mount_path": "/data3", "fs_type": "xfs"}
    code, answer, err = run(sh, [disk], [dev["old"]])
    assert code == 0, err
    assert answer["disks"] == [
        {"index": 3, "device": dev["old"], "action": "mounted on /data3 (existing ext4)"}
    ]
    assert sh("cat /data3/file")[1] == "kept\n"


def test_no_free_disk_is_an_error_naming_the_disk(box):
    _, sh, dev = box
    code, answer, err = run(sh, [{"index": 5, "size": MIB, "mount_path": "/data5"}], [dev["data"]])
    assert code == 1 and answer["disks"] == []
    assert "disk 5: no unused disk found for it (mount path /data5)" in err
