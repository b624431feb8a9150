"""Time to parse a generated 1,000-system RADL document and a 1,000-node TOSCA document.

Run: .venv/bin/python bench/parse_templates.py [N]. Parsing is pure: no network, no cloud.
"""

from __future__ import annotations

import sys
import time

from orbis.lang import load_template

RECIPE = "@begin\n---\n- tasks:\n  - debug: msg=hello\n@end"


def radl_document(n: int) -> str:
    parts = [
        "description bench (name = 'bench')",
        "network pub (outbound = 'yes' and outports = '22,80-8080')",
        "network priv ()",
    ]
    for i in range(n):
        parts.append(
            f"system vm{i} (\n    cpu.count >= 2 and memory.size >= 4GiB and\n"
            f"    net_interface.0.connection = 'priv' and net_interface.0.dns_name = 'vm{i}' and\n"
            f"    disk.0.image.url = 'ost://cloud.example.org/img' and\n"
            f"    disk.0.os.credentials.username = 'cloudadm' and disk.1.size = 10GB\n)"
        )
        parts.append(f"configure app{i} (\n{RECIPE}\n)")
    items = "\n".join(f"    system vm{i} configure app{i} step {1 + i % 3}" for i in range(n))
    parts.append(f"contextualize (\n{items}\n)")
    parts += [f"deploy vm{i} 1" for i in range(n)]
    return "\n".join(parts) + "\n"


def tosca_document(n: int) -> str:
    lines = [
        "tosca_definitions_version: tosca_simple_yaml_1_0",
        "imports:",
        "  - indigo_custom_types: https://raw.githubusercontent.com/indigo-dc/tosca-types/"
        "master/custom_types.yaml",
        "topology_template:",
        "  node_templates:",
    ]
    for i in range(n):
        lines += [
            f"    vm{i}:",
            "      type: tosca.nodes.indigo.Compute",
            "      capabilities:",
            "        host: {properties: {num_cpus: 2, mem_size: 4 GiB}}",
            "        os: {properties: {image: 'ubuntu:22.04', type: linux}}",
            f"    app{i}:",
            "      type: tosca.nodes.SoftwareComponent",
            f"      requirements: [{{host: vm{i}}}]",
            "      interfaces:",
            "        Standard:",
            "          configure:",
            "            implementation: |",
            "              - hosts: all",
            "                tasks: [{debug: {msg: hello}}]",
        ]
    return "\n".join(lines) + "\n"


def timed(name: str, text: str) -> float:
    load_template(name, text=text)  # warm caches (shipped TOSCA type sets)
    elapsed = float("inf")
    for _ in range(3):  # best of three: the machine may be busy
        start = time.perf_counter()
        template = load_template(name, text=text)
        elapsed = min(elapsed, time.perf_counter() - start)
    print(f"{name}: {len(template.computes)} machines, {len(text) / 1e6:.2f} MB, {elapsed:.3f} s")
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    timed(f"radl-{n}.radl", radl_document(n))
    timed(f"tosca-{n}.yaml", tosca_document(n))


if __name__ == "__main__":
    main()
