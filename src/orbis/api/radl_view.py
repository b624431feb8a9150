"""A node as IM clients read it (the service builds it: service/vm_radl.py, which the IM
export uses too)."""

from orbis.service.vm_radl import node_radl, to_radl_text

__all__ = ["node_radl", "to_radl_text"]
