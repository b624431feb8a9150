"""`orbis sites` against a live server whose caller names an OpenStack site (the stand-in)."""

from __future__ import annotations

import json

import pytest

from orbis.testing.server import orbis_server
from orbis.testing.standins.openstack import OpenStackStandin


def test_sites_lists_the_clouds_of_the_auth_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORBIS_PROVIDER", "sim")  # no container engine needed for this
    with OpenStackStandin(quota={"instances": 5}) as cloud, orbis_server() as server:
        line = "; ".join(f"{k} = {v}" for k, v in cloud.auth_line().items())
        with server.auth_file.open("a") as auth:
            auth.write(line + "\nid = nebula; type = OpenNebula; host = one.example\n")
        table = server.cli("sites")
        assert table.returncode == 0, table.stderr
        for text in ("standin", "OpenStack", "m1.small", "Ubuntu 22.04", "instances 0/5",
                     "nebula", "not supported"):  # fmt: skip
            assert text in table.stdout, text
        assert cloud.auth_line()["password"] not in table.stdout
        answer = server.cli("sites", "standin", "--json")
        assert answer.returncode == 0, answer.stderr
        (site,) = json.loads(answer.stdout)
        assert site["id"] == "standin" and site["quotas"]["instances"]["limit"] == 5
        missing = server.cli("sites", "nowhere")
        assert missing.returncode != 0 and "no site 'nowhere'" in missing.stderr + missing.stdout
