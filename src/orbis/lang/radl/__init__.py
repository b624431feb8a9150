"""RADL, IM's Resource and Application Description Language: our own parser and writer.

`load_radl(text, file)` → `Template`; `to_radl(template)` → text; `from_json` / `to_json` for
RADL's JSON form. See docs/radl.md.
"""

from orbis.lang.radl.loader import load_radl

__all__ = ["load_radl"]
