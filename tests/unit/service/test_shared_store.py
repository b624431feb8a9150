"""Two servers on one database: what one changes about access, the other sees at once."""

from __future__ import annotations

import pytest

from orbis.auth import identify
from orbis.providers.sim import SimProvider
from orbis.service import Forbidden, OrbisService
from orbis.store.repository import Store

EMPTY = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 0}}
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"
BOB = "id = im; type = InfrastructureManager; username = bob; password = b"


@pytest.mark.parametrize("change", ["grant", "revoke"])
async def test_an_owner_change_made_by_one_server_holds_at_the_other(tmp_path, db_url, change):
    url = db_url
    one, two = (OrbisService(Store(url), SimProvider(tmp_path / "cloud.db"), tmp_path / "w",
                             holder=f"test:{n}") for n in (1, 2))  # fmt: skip
    alice, bob = identify(ALICE)[0], identify(BOB)[0]
    infra = await one.create(alice, EMPTY)
    both = alice.owners() + bob.owners()
    if change == "revoke":
        one.change_owners(alice, infra, both, overwrite=True)
    two.infrastructure(alice, infra)  # the second server has read (and cached) the owners
    if change == "grant":
        with pytest.raises(Forbidden):
            two.infrastructure(bob, infra)
        one.change_owners(alice, infra, both, overwrite=True)
        assert two.infrastructure(bob, infra).id == infra
    else:
        assert two.infrastructure(bob, infra).id == infra
        one.change_owners(alice, infra, alice.owners(), overwrite=True)
        with pytest.raises(Forbidden):
            two.infrastructure(bob, infra)
