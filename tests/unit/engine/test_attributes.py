"""get_attribute in outputs: IM's attribute list (tosca-dialect §3) from recorded nodes, and an
attribute nobody gives a value is a template error with its position (IM: a silent null)."""

from __future__ import annotations

import pytest

from orbis.engine.attributes import ansible_output, attribute_resolver
from orbis.lang.errors import TemplateError
from orbis.lang.functions import evaluate
from orbis.lang.tosca import load
from orbis.store.schema import NodeRow

HEAD = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - indigo_custom_types: https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml
topology_template:
  node_templates:
    front:
      type: tosca.nodes.indigo.Compute
      capabilities: {scalable: {properties: {count: 2}}}
  outputs:
"""
LOG = """2026-12-06T03:00:00 SSH ready at 10.0.0.5 after 0.31 s
2026-12-06T03:00:02 Step front.configure: ok
TASK [install] changed
  installed 3 packages
  done
TASK [check] ok
  msg: fine
2026-12-06T03:00:04 Configured
"""


def rows() -> list[NodeRow]:
    return [
        NodeRow(infrastructure_id="i", vm_id=n, name="front", ssh_user="cloudadm", deleted=False,
                public_ip=f"1.2.3.{n}", private_ip=f"10.0.0.{n}", log=LOG if n == 0 else "")
        for n in (0, 1)
    ]  # fmt: skip


def outputs(body: str) -> dict:
    template = load("t.yaml", text=HEAD + body)
    resolve = attribute_resolver(template, rows(), private_key="KEY")
    return {name: evaluate(out.value, resolve) for name, out in template.outputs.items()}


def test_credential_ctxt_log_and_ansible_output_as_im_gives_them() -> None:
    got = outputs("""    creds: {value: {get_attribute: [front, endpoint, credential]}}
    user1: {value: {get_attribute: [front, endpoint, credential, 1, user]}}
    log: {value: {get_attribute: [front, ctxt_log, 0]}}
    task: {value: {get_attribute: [front, ansible_output, configure_front, tasks, install, output]}}
    state: {value: {get_attribute: [front, ansible_output, front.configure, tasks, check, state]}}
    ids: {value: {get_attribute: [front, tosca_id]}}
""")
    assert got["creds"] == [{"user": "cloudadm", "token_type": "private_key", "token": "KEY"}] * 2
    assert got["user1"] == "cloudadm"
    assert got["log"] == LOG
    assert got["task"] == "installed 3 packages\ndone"
    assert got["state"] == "ok"
    assert got["ids"] == ["0", "1"]


def test_ansible_output_reads_steps_and_tasks() -> None:
    parsed = ansible_output(LOG)
    assert parsed["front.configure"] == parsed["configure_front"]
    assert parsed["front.configure"]["tasks"]["check"] == {"state": "ok", "output": "msg: fine"}


def test_a_type_declared_attribute_is_accepted() -> None:
    # tosca.nodes.Compute declares `networks`; IM has no value for it: null, no error
    assert outputs("    nets: {value: {get_attribute: [front, networks]}}\n") == {"nets": None}


def test_an_unknown_attribute_is_an_error_with_position_and_hint() -> None:
    with pytest.raises(TemplateError) as info:
        outputs("    log: {value: {get_attribute: [front, ctxt_logg]}}\n")
    text = str(info.value)
    assert "t.yaml:10:18: get_attribute: node 'front' (tosca.nodes.indigo.Compute) has no " \
           "attribute 'ctxt_logg'" in text, text  # fmt: skip
    assert "ctxt_log" in text.split("ctxt_logg'", 1)[1]  # the hint names the near one
