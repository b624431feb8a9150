"""IM's flavor rule: cheapest, then fewest PCI devices, then smallest; requirements are minimums."""

from __future__ import annotations

from orbis.model.infrastructure import Compute
from orbis.placement.fit import explain_no_fit, requirement_misses, smallest_fitting
from orbis.providers.base import Flavor

GB = 1024**3
FLAVORS = [
    Flavor("1", "m1.tiny", 1, 512, 1),
    Flavor("2", "m1.small", 1, 2048, 20),
    Flavor("3", "m1.medium", 2, 4096, 40),
    Flavor("4", "m1.large", 4, 8192, 80),
    Flavor("5", "g1.large", 4, 8192, 80, gpus=1, gpu_vendor="NVIDIA", gpu_model="Tesla V100",
           pci_devices=1),
    Flavor("6", "g2.large", 8, 16384, 80, gpus=2, gpu_vendor="NVIDIA", gpu_model="A100",
           pci_devices=2),
]


def node(**kw: object) -> Compute:
    return Compute("n", "tosca.nodes.Compute", **kw)  # type: ignore[arg-type]


def test_smallest_that_meets_minimums():
    assert smallest_fitting(FLAVORS, node(num_cpus=2, mem_size=2 * GB)).name == "m1.medium"
    assert smallest_fitting(FLAVORS, node(num_cpus=1)).name == "m1.small"  # tiny: disk < 5 GB


def test_default_disk_minimum_and_explicit_disk():
    assert smallest_fitting(FLAVORS, node(), min_disk_gb=0).name == "m1.tiny"
    assert smallest_fitting(FLAVORS, node(disk_size=50 * GB)).name == "m1.large"


def test_gpu_prefers_fewest_pci_devices_and_checks_model():
    assert smallest_fitting(FLAVORS, node(num_gpus=1)).name == "g1.large"
    assert smallest_fitting(FLAVORS, node(num_gpus=1, gpu_model="a100")).name == "g2.large"
    assert smallest_fitting(FLAVORS, node(num_gpus=4)) is None


def test_a_price_beats_size():
    priced = [*FLAVORS, Flavor("7", "cheap.big", 8, 32768, 100, price=0.01)]
    assert smallest_fitting(priced, node(num_cpus=1)).name == "cheap.big"


def test_instance_type_by_name_with_wildcards():
    assert smallest_fitting(FLAVORS, node(instance_type="m1.l*")).name == "m1.large"
    assert smallest_fitting(FLAVORS, node(instance_type="x*")) is None


def test_sgx_and_arch():
    assert smallest_fitting(FLAVORS, node(features={"cpu.sgx": True})) is None
    arm = [Flavor("a", "a1", 2, 4096, 20, arch=("arm64",))]
    assert smallest_fitting(arm, node(cpu_arch="x86_64")) is None
    assert smallest_fitting(arm, node(cpu_arch="arm64")).name == "a1"


def test_explanation_names_what_is_missing():
    message = explain_no_fit(FLAVORS, node(num_cpus=16, mem_size=64 * GB))
    assert "no flavor fits n" in message and "vCPUs < 16" in message
    assert requirement_misses(FLAVORS[3], node(num_cpus=4, mem_size=8 * GB)) == []
