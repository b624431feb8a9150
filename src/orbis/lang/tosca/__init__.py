"""TOSCA (IM dialect) front end: `load(path, inputs, text)` → `model.Template`."""

from orbis.lang.tosca.loader import load, load_document

__all__ = ["load", "load_document"]
