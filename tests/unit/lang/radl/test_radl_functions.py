"""RADL systems that IM's OSCAR or Lambda connector takes are functions, read exactly as the
TOSCA FaaS.Function node is: same model, same OSCAR service definition, same Lambda settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orbis.cli.templates import validation_report
from orbis.lang import load_template
from orbis.lang.radl.json_form import from_json, to_json
from orbis.lang.radl.loader import load_radl
from orbis.lang.radl.writer import to_radl
from orbis.lang.tosca.loader import load
from orbis.model.compare import canonical
from orbis.providers.aws_lambda.functions import lambda_definition
from orbis.providers.oscar.fdl import service_definition

# the shape of IM's examples/lambda.radl (our own values)
LAMBDA_RADL = """system resize (
    name = 'resize-photos' and
    memory.size = 1G and
    disk.0.image.url = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/resize' and
    script = 'resize.sh' and
    input.0.provider = 's3' and
    input.0.path = 'photos/in' and
    input.0.suffix = ['*'] and
    output.0.provider = 's3' and
    output.0.path = 'photos/out'
)

configure unused ()

deploy resize 1
"""

OSCAR_RADL = """system plants (
    name = 'plants' and
    memory.size = 512Mi and
    cpu.count = 0.5 and
    disk.0.image.url = 'oscar://cluster.example.org/grycap/plants' and
    script = '#!/bin/sh
echo hi' and
    environment.variables = ['MODE:fast', 'URL:http://x:1'] and
    gpu.count = 1 and
    alpine = 'yes' and
    image_pull_secrets = 'regcred' and
    expose.min_scale = 1 and expose.max_scale = 3 and expose.port = 8080 and
    input.0.provider = 'minio.store' and input.0.path = 'in' and input.0.suffix = ['jpg'] and
    output.0.provider = 's3.aws' and output.0.path = 'out' and output.0.prefix = ['res'] and
    minio.0.id = 'store' and minio.0.endpoint = 'https://minio.example.org' and
    minio.0.access_key = 'AK' and minio.0.secret_key = 'SK' and minio.0.verify = 'yes' and
    s3.0.id = 'aws' and s3.0.region = 'us-east-1' and s3.0.access_key = 'A2' and
    s3.0.secret_key = 'S2' and
    my_flag = 'kept'
)
deploy plants 1 oscar_a
"""

OSCAR_TOSCA = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    plants:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: plants
        memory: 512Mi
        cpu: 0.5
        image: oscar://cluster.example.org/grycap/plants
        script: "#!/bin/sh\\necho hi"
        env_variables: {MODE: fast, URL: "http://x:1"}
        enable_gpu: true
        alpine: true
        image_pull_secrets: [regcred]
        exposed: {min_scale: 1, max_scale: 3, port: 8080}
        input: [{storage_provider: minio.store, path: in, suffix: [jpg]}]
        output: [{storage_provider: s3.aws, path: out, prefix: [res]}]
        storage_providers:
          minio:
            store: {endpoint: "https://minio.example.org", access_key: AK, secret_key: SK,
                    verify: true}
          s3:
            aws: {region: us-east-1, access_key: A2, secret_key: S2}
  policies:
    - where:
        type: tosca.policies.indigo.Placement
        properties: {cloud_id: oscar_a}
        targets: [plants]
"""

LAMBDA_TOSCA = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    resize:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: resize-photos
        memory: 1 GB
        image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/resize
        script: resize.sh
        input: [{storage_provider: s3, path: photos/in, suffix: ["*"]}]
        output: [{storage_provider: s3, path: photos/out}]
"""

# what the functions engine reads of a function (the properties differ only by language)
FIELDS = ("name", "image", "script", "count", "memory", "cpu", "environment", "inputs",
          "outputs", "storage_providers", "host", "cloud_id")  # fmt: skip


def _fields(fn: object) -> dict[str, object]:
    data = canonical(fn)
    return {k: data[k] for k in FIELDS}


def test_an_oscar_system_is_the_function_the_tosca_node_is() -> None:
    radl = load_radl(OSCAR_RADL, "f.radl")
    tosca = load("f.yaml", text=OSCAR_TOSCA)
    assert radl.computes == {} and list(radl.functions) == ["plants"]
    fn, same = radl.functions["plants"], tosca.functions["plants"]
    assert _fields(fn) == _fields(same)
    assert fn.position is not None and (fn.position.line, fn.position.col) == (1, 8)
    # the OSCAR service sent is the same, field for field
    assert service_definition(fn) == service_definition(same)
    assert service_definition(fn)["expose"] == {"min_scale": 1, "max_scale": 3, "api_port": 8080}
    assert fn.properties["radl.features"] == {"my_flag": "kept"}  # not read, kept as written
    assert radl.systems() == tosca.systems() == {"plants": 1}


def test_a_lambda_system_is_the_function_the_tosca_node_is() -> None:
    radl = load_radl(LAMBDA_RADL, "lambda.radl")
    tosca = load("l.yaml", text=LAMBDA_TOSCA)
    fn = radl.functions["resize"]
    # the TOSCA type's cpu default (1.0) is sent by IM for TOSCA only; Lambda ignores cpu
    assert tosca.functions["resize"].cpu == 1.0 and fn.cpu is None
    assert {**_fields(fn), "cpu": 1.0} == _fields(tosca.functions["resize"])
    assert lambda_definition(fn, "i") == lambda_definition(tosca.functions["resize"], "i")
    # IM's lambda:// scheme names the same ECR image
    again = load_radl(LAMBDA_RADL.replace("'1234", "'lambda://1234"), "l.radl")
    assert again.functions["resize"].image == fn.image


def test_validate_json_counts_radl_functions(tmp_path: Path) -> None:
    path = tmp_path / "lambda.radl"
    path.write_text(LAMBDA_RADL)
    summary = validation_report(path, {}, [])["summary"]
    assert summary["functions"] == {"resize": 1} and summary["systems"] == {"resize": 1}
    assert summary["computes"] == {}
    assert summary["function_targets"]["resize"]["backend"] == "lambda"


@pytest.mark.parametrize("change", [
    ("script = 'resize.sh' and", ""),  # no script: not a function for IM's connectors
    ("name = 'resize-photos' and", ""),
    ("'123456789012.dkr.ecr", "'ost://cloud.example.org/123456789012.dkr.ecr"),  # a VM image
    ("script = 'resize.sh' and", "script = 'resize.sh' and provider.type = 'kubernetes' and"),
])  # fmt: skip
def test_a_system_other_connectors_take_stays_a_machine(change: tuple[str, str]) -> None:
    template = load_radl(LAMBDA_RADL.replace(*change), "m.radl")
    assert template.functions == {} and list(template.computes) == ["resize"]


def test_one_function_whatever_the_count_and_configures_are_not_run_on_it() -> None:
    text = LAMBDA_RADL.replace("deploy resize 1", "configure resize ()\ndeploy resize 3")
    template = load_radl(text, "c.radl")
    assert template.functions["resize"].count == 1 and template.components == {}
    assert "c.radl:16:1: system 'resize' is a function: one is made, not 3" in " ".join(
        template.warnings)
    assert any(w.startswith("c.radl:15:11: configure 'resize' is not run on system 'resize': "
                            "it is a function") for w in template.warnings)
    assert load_radl(LAMBDA_RADL.replace("deploy resize 1", ""), "z.radl").functions[
        "resize"].count == 0


def test_features_connectors_do_not_read_are_reported() -> None:
    text = OSCAR_RADL.replace("input.0.provider", "input.provider").replace(
        "'MODE:fast'", "'MODE=fast'")
    template = load_radl(text, "w.radl")
    fn = template.functions["plants"]
    assert fn.inputs == [] and fn.environment == {"URL": "http://x:1"}
    assert any("environment variable 'MODE=fast' is not 'NAME:value'" in w
               for w in template.warnings)
    assert any("feature 'input.provider' is not read" in w for w in template.warnings)


@pytest.mark.parametrize("text", [OSCAR_RADL, LAMBDA_RADL], ids=["oscar", "lambda"])
def test_written_back_and_read_again_the_function_is_the_same(text: str) -> None:
    template = load_radl(text, "r.radl")
    again = load_template("again.radl", text=to_radl(template))
    assert canonical(again.functions) == canonical(template.functions)
    from_json_form = from_json(json.dumps(to_json(template)), "x.json")
    assert canonical(from_json_form.functions) == canonical(template.functions)


def test_a_tosca_standalone_function_is_a_system_of_its_radl() -> None:
    tosca = load("f.yaml", text=OSCAR_TOSCA)
    radl = load_template("t.radl", text=to_radl(tosca))
    assert _fields(radl.functions["plants"]) == _fields(tosca.functions["plants"])
