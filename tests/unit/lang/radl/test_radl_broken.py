"""Every broken document under fixtures/radl/broken says where and what: its first line is
`# expect: LINE:COL fragment`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orbis.lang import TemplateError, load_template

BROKEN = Path(__file__).resolve().parents[3] / "fixtures" / "radl" / "broken"
FILES = sorted(BROKEN.glob("*.radl"))


def test_enough_broken_files() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_broken(path: Path) -> None:
    m = re.match(r"# expect: (\d+):(\d+) (.+)", path.read_text())
    assert m, "first line must be '# expect: LINE:COL fragment'"
    with pytest.raises(TemplateError) as info:
        load_template(path)
    where = f"{path}:{m.group(1)}:{m.group(2)}"
    found = [str(p) for p in info.value.problems]
    assert any(str(p.position) == where and m.group(3) in str(p) for p in info.value.problems), (
        found
    )
