"""The valid corpus: snapshots of meaning(), writer round trip, JSON round trip.

Regenerate the snapshots with `ORBIS_UPDATE_SNAPSHOTS=1 pytest tests/unit/lang/radl`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orbis.lang import load_template
from orbis.lang.radl.json_form import from_json, to_json
from orbis.lang.radl.writer import to_radl
from orbis.model.compare import meaning

CORPUS = Path(__file__).resolve().parents[3] / "fixtures" / "radl"
SNAPSHOTS = CORPUS / "snapshots"
FILES = sorted(CORPUS.glob("*.radl"))


def test_corpus_is_big_enough() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_snapshot(path: Path) -> None:
    got = json.loads(json.dumps(meaning(load_template(path)), default=str))
    snapshot = SNAPSHOTS / f"{path.stem}.json"
    if os.environ.get("ORBIS_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(snapshot.read_text())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_writer_round_trip(path: Path) -> None:
    template = load_template(path)
    again = load_template(f"{path.stem}.out.radl", text=to_radl(template))
    assert meaning(again) == meaning(template)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_json_round_trip(path: Path) -> None:
    template = load_template(path)
    text = json.dumps(to_json(template), indent=1)
    assert meaning(from_json(text, "x.json")) == meaning(template)
    assert meaning(load_template("x.json", text=text)) == meaning(template)
