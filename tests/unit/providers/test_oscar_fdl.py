"""The FDL a function becomes: every field IM maps, in OSCAR's shapes, and clear errors."""

from __future__ import annotations

import pytest

from orbis.model.infrastructure import ServerlessFunction
from orbis.providers.oscar import FdlError, service_definition, spec_digest
from orbis.providers.oscar.fdl import image_of, memory_of


def function(**props: object) -> ServerlessFunction:
    base: dict[str, object] = {"name": "plants"}
    base.update(props)
    return ServerlessFunction(
        name="fn", type="tosca.nodes.aisprint.FaaS.Function",
        image=str(base.pop("image", "grycap/plants")), script=str(base.pop("script", "echo")),
        memory=base.pop("memory", 1024 * 2**20), cpu=base.pop("cpu", 0.5),  # type: ignore[arg-type]
        environment=base.pop("env", {"A": "1"}),  # type: ignore[arg-type]
        inputs=base.pop("input", []), outputs=base.pop("output", []),  # type: ignore[arg-type]
        storage_providers=base.pop("storage_providers", {}),  # type: ignore[arg-type]
        properties=base,
    )


def test_every_field_im_maps() -> None:
    fn = function(
        log_level="debug", alpine=True, enable_gpu=True, image_pull_secrets=["regcred"],
        secrets={"TOKEN": "s3cr3t"}, exposed={"min_scale": 1, "max_scale": 3, "port": 8080},
        input=[{"storage_provider": "minio.default", "path": "/plants/in/", "suffix": "jpg"}],
        output=[{"storage_provider": "s3.aws", "path": "bucket/out", "prefix": ["res"]}],
        storage_providers={"s3": {"aws": {"access_key": "AK", "secret_key": "SK",
                                          "region": "eu-west-1"}},
                           "minio": {"other": {"endpoint": "https://m", "access_key": "a",
                                               "secret_key": "b", "region": "r"}}},
        replicas=[{"type": "endpoint", "url": "https://r.example/job/x", "priority": 5,
                   "headers": {"X-Token": "t"}, "ssl_verify": False},
                  {"type": "oscar", "cluster_id": "b", "service_name": "plants-b"}],
    )
    fdl = service_definition(fn, clusters={"b": {"endpoint": "https://b", "auth_user": "u",
                                                  "auth_password": "p", "ssl_verify": True}})
    assert fdl == {
        "name": "plants", "image": "grycap/plants", "script": "echo", "memory": "1024Mi",
        "cpu": "0.5", "log_level": "DEBUG", "alpine": True, "enable_gpu": True,
        "image_pull_secrets": ["regcred"],
        "expose": {"min_scale": 1, "max_scale": 3, "api_port": 8080},
        "environment": {"Variables": {"A": "1"}, "variables": {"A": "1"},
                        "secrets": {"TOKEN": "s3cr3t"}},
        "input": [{"storage_provider": "minio.default", "path": "/plants/in/", "suffix": ["jpg"]}],
        "output": [{"storage_provider": "s3.aws", "path": "bucket/out", "prefix": ["res"]}],
        "storage_providers": {
            "s3": {"aws": {"access_key": "AK", "secret_key": "SK", "region": "eu-west-1"}},
            "minio": {"other": {"endpoint": "https://m", "access_key": "a", "secret_key": "b",
                                "region": "r", "verify": False}}},
        "replicas": [
            {"type": "oscar", "priority": 0, "cluster_id": "b", "service_name": "plants-b"},
            {"type": "endpoint", "priority": 5, "url": "https://r.example/job/x",
             "ssl_verify": False, "headers": {"X-Token": "t"}}],
        "clusters": {"b": {"endpoint": "https://b", "auth_user": "u", "auth_password": "p",
                           "ssl_verify": True}},
    }
    assert spec_digest(fdl) == spec_digest(dict(reversed(list(fdl.items()))))


@pytest.mark.parametrize(("image", "expected"), [
    ("docker://ghcr.io/a/b:1", "ghcr.io/a/b:1"), ("grycap/x", "grycap/x"),
    ("oscar://cluster.example/grycap/x", "grycap/x"),
])  # fmt: skip
def test_images_as_im_reads_them(image: str, expected: str) -> None:
    assert image_of(image, "fn") == expected


@pytest.mark.parametrize(("props", "message"), [
    ({"image": "ost://site/img"}, "has scheme 'ost'"),
    ({"name": "Bad_Name"}, "not a valid OSCAR service name"),
    ({"input": [{"storage_provider": "ftp.x", "path": "a"}]},
     "input[0]: storage provider 'ftp.x' is not of an OSCAR kind"),
    ({"output": [{"storage_provider": "s3.missing", "path": "a"}]},
     "output[0]: storage provider 's3.missing' is not defined"),
    ({"storage_providers": {"gcs": {"x": {}}}}, "storage_providers.gcs is not an OSCAR storage"),
    ({"storage_providers": {"webdav": {"d": {"hostname": "https://dcache.example",
                                             "login": "u", "password": "p"}}}},
     "storage_providers.webdav.d.hostname: give the host name alone"),
    ({"storage_providers": {"rucio": {"r": {"host": "rucio.example", "rse": "X",
                                            "auth_host": "auth.example/path"}}}},
     "storage_providers.rucio.r.auth_host: give the host name alone"),
    ({"replicas": [{"type": "endpoint"}]}, "replicas[0]: a replica of type endpoint needs a url"),
    ({"replicas": [{"type": "oscar", "cluster_id": "zz", "service_name": "s"}]},
     "replicas[0]: cluster 'zz' has no URL"),
    ({"replicas": [{"type": "queue"}]}, "type must be oscar or endpoint"),
    ({"log_level": "LOUD"}, "log_level 'LOUD'"),
])  # fmt: skip
def test_bad_fields_name_the_function_and_field(props: dict[str, object], message: str) -> None:
    with pytest.raises(FdlError) as caught:
        service_definition(function(**props))
    assert "function 'fn'" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(("size", "hosted", "expected"), [
    (512 * 10**6, True, "488Mi"), (512 * 10**6, False, "488.281Mi"), (2 * 2**30, True, "2048Mi"),
    (2 * 2**30, False, "2048Mi"), (256 * 2**20, False, "256Mi"), (1000, True, "1Mi"),
])  # fmt: skip
def test_memory_as_im_writes_it(size: int, hosted: bool, expected: str) -> None:
    """IM's recipe (hosted) sends whole MiB, its OSCAR connector MiB as %g."""
    assert memory_of(size, hosted=hosted) == expected


def test_ims_hosted_faas_template_becomes_the_fdl_im_sends() -> None:
    from pathlib import Path

    from orbis.lang import load_template

    corpus = Path(__file__).resolve().parents[2] / "fixtures/tosca/corpus"
    template = load_template(corpus / "c14_faas_on_oscar.yaml")
    fn = template.functions["detect"]
    assert fn.host == "oscar"
    assert service_definition(fn) == {
        "name": "detect-faces", "image": "grycap/detector", "script": "#!/bin/sh\necho hi",
        "memory": "1024Mi", "cpu": "0.5", "alpine": False, "enable_gpu": False,
        "environment": {"Variables": {"THRESHOLD": "0.8"}, "variables": {"THRESHOLD": "0.8"}},
        "input": [{"storage_provider": "minio.default", "path": "detect/in"}],
        "output": [{"storage_provider": "minio.default", "path": "detect/out",
                    "suffix": ["png"]}],
    }  # fmt: skip


NEWER = {
    "total_memory": "4Gi", "total_cpu": 2, "synchronous": {"min_scale": 1, "max_scale": 4},
    "delegation": "load-based", "rescheduler_threshold": 30, "file_stage_in": "true",
    "image_prefetch": True, "annotations": {"a/b": "c"}, "labels": {"team": "plants"},
    "vo": "vo.example.eu", "visibility": "restricted", "allowed_users": ["alice@egi.eu"],
    "isolation_level": "USER", "interlink_node_name": "vk-hpc",
    "volume": {"size": "1Gi", "mount_path": "/data", "lifecycle_policy": "retain"},
    "mount": {"storage_provider": "minio.default", "path": "/shared/"},
    "exposed": {"port": "8080", "rewrite_target": "true", "nodePort": 30080,
                "set_auth": False, "health_path": "/ready"},
}  # fmt: skip


def test_newer_oscar_fields_in_oscars_shapes() -> None:
    fdl = service_definition(function(**NEWER))
    assert {k: fdl[k] for k in (*NEWER, "expose") if k in fdl and k != "exposed"} == {
        "total_memory": "4Gi", "total_cpu": "2", "synchronous": {"min_scale": 1, "max_scale": 4},
        "delegation": "load-based", "rescheduler_threshold": 30, "file_stage_in": True,
        "image_prefetch": True, "annotations": {"a/b": "c"}, "labels": {"team": "plants"},
        "vo": "vo.example.eu", "visibility": "restricted", "allowed_users": ["alice@egi.eu"],
        "isolation_level": "USER", "interlink_node_name": "vk-hpc",
        "volume": {"size": "1Gi", "mount_path": "/data", "lifecycle_policy": "retain"},
        "mount": {"storage_provider": "minio.default", "path": "/shared/"},
        "expose": {"api_port": 8080, "rewrite_target": True, "nodePort": 30080,
                   "set_auth": False, "health_path": "/ready"},
    }  # fmt: skip
    assert "exposed" not in fdl


def test_the_stand_in_takes_what_orbis_sends_and_refuses_what_oscar_would_not() -> None:
    from pydantic import ValidationError

    from orbis.testing.standins.oscar.schema import Service

    fdl = service_definition(function(**NEWER))
    assert Service.model_validate(fdl).model_dump(exclude_none=True)["volume"] == fdl["volume"]
    for field, value, said in [
        ("visibility", "secret", "visibility"), ("total_memory", "lots", "total_memory"),
        ("isolation_level", "user", "isolation_level"), ("delegation", "fastest", "delegation"),
        ("volume", {"size": "1Gi", "mount_path": "data"}, "mount_path"),
        ("expose", {"port": 80}, "port"), ("synchronous", {"min_scale": -1}, "min_scale"),
        ("mount", {"storage_provider": "s3.nowhere", "path": "x"}, "s3.nowhere"),
        ("allowed_users", ["bob"], "restricted"), ("total_cpu", "two", "two"),
    ]:
        bad = {**fdl, field: value}
        if field == "allowed_users":
            bad["visibility"] = "public"
        with pytest.raises(ValidationError) as caught:
            Service.model_validate(bad)
        assert said in str(caught.value), (field, str(caught.value))


@pytest.mark.parametrize(("props", "message"), [
    ({"visibility": "everyone"}, "visibility must be one of private, public, restricted"),
    ({"total_memory": "2 GB"}, "total_memory must be a Kubernetes quantity"),
    ({"total_cpu": 0}, "total_cpu must be more than 0"),
    ({"synchronous": {"min": 1}}, "synchronous.min is not an OSCAR field"),
    ({"volume": {"mount_path": "/d"}}, "volume needs size"),
    ({"volume": {"size": "1Gi", "mount_path": "d"}}, "volume.mount_path must be an absolute"),
    ({"allowed_users": ["a"]}, "allowed_users needs visibility: restricted"),
    ({"rescheduler_threshold": "soon"}, "rescheduler_threshold must be a whole number"),
    ({"file_stage_in": "maybe"}, "file_stage_in must be true or false"),
    ({"exposed": {"port": "http"}}, "exposed.port must be a whole number"),
    ({"exposed": {"replicas": 2}}, "exposed.replicas is not an OSCAR expose field"),
    ({"mount": {"storage_provider": "s3.none", "path": "p"}},
     "mount: storage provider 's3.none' is not defined"),
])  # fmt: skip
def test_bad_newer_fields_name_the_function_and_field(props: dict[str, object],
                                                      message: str) -> None:  # fmt: skip
    with pytest.raises(FdlError) as caught:
        service_definition(function(**props))
    assert "function 'fn'" in str(caught.value) and message in str(caught.value)


def test_a_template_with_newer_fields_validates_and_sends_them(tmp_path: object) -> None:
    from pathlib import Path

    from orbis.lang import load_template

    path = Path(str(tmp_path)) / "newer.yaml"
    path.write_text("""tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    plants:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: plants
        memory: 512Mi
        image: grycap/plants
        script: echo
        total_memory: 4Gi
        total_cpu: 2
        visibility: restricted
        allowed_users: [alice@egi.eu]
        synchronous: {min_scale: 1}
        volume: {size: 1Gi, mount_path: /data}
""")
    fdl = service_definition(load_template(path).functions["plants"])
    assert (fdl["total_memory"], fdl["total_cpu"], fdl["visibility"], fdl["allowed_users"],
            fdl["synchronous"], fdl["volume"]) == (
        "4Gi", "2", "restricted", ["alice@egi.eu"], {"min_scale": 1},
        {"size": "1Gi", "mount_path": "/data"})  # fmt: skip
