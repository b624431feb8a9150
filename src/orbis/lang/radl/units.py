"""RADL units (reference §1.3): decimal K M G T, binary Ki Mi Gi Ti, optional B, any case."""

from __future__ import annotations

_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
PERFORMANCE_UNITS = ("ECU", "GCEU", "HRZ")


def size_factor(unit: str) -> int | None:
    """Bytes per unit, or None when `unit` is not a size unit."""
    u = unit.lower()
    if u.endswith("b"):
        u = u[:-1]
    return _DECIMAL.get(u) if u in _DECIMAL else _BINARY.get(u)


def unit_factor(unit: str) -> int | None:
    """The factor IM applies to a number with this unit (None: not a known unit)."""
    if unit.upper() in PERFORMANCE_UNITS:
        return 1
    return size_factor(unit)


def format_size(value: int) -> str:
    """Bytes as the shortest exact RADL number with unit (4294967296 → 4GiB, 2000000000 → 2G)."""
    if value <= 0:
        return str(value)
    best = str(value)
    for unit, factor in (
        ("TiB", 2**40),
        ("GiB", 2**30),
        ("MiB", 2**20),
        ("KiB", 2**10),
        ("TB", 10**12),
        ("GB", 10**9),
        ("MB", 10**6),
        ("KB", 10**3),
    ):
        if value % factor == 0 and len(f"{value // factor}{unit}") < len(best):
            best = f"{value // factor}{unit}"
    return best
