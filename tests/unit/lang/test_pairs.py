"""The same infrastructure written in TOSCA and in RADL means the same (tests/fixtures/pairs).

`orbis.model.compare.meaning` says what "the same" covers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orbis.lang import load_template
from orbis.model.compare import meaning

PAIRS = Path(__file__).resolve().parents[2] / "fixtures" / "pairs"
NAMES = sorted(p.stem for p in PAIRS.glob("*.yaml"))


def test_every_pair_has_both_files() -> None:
    assert len(NAMES) >= 6
    for name in NAMES:
        assert (PAIRS / f"{name}.radl").exists()


@pytest.mark.parametrize("name", NAMES)
def test_pair(name: str) -> None:
    tosca = load_template(PAIRS / f"{name}.yaml")
    radl = load_template(PAIRS / f"{name}.radl")
    assert meaning(tosca) == meaning(radl)
