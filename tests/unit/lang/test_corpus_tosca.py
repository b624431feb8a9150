"""IM-style TOSCA corpus: each file's canonical model must equal its reviewed snapshot.

`ORBIS_UPDATE_SNAPSHOTS=1 pytest tests/unit/lang/test_corpus_tosca.py` rewrites the snapshots;
review the diff before keeping it (tests/unit/lang/tosca/test_mapping.py checks key facts).
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from orbis.lang import CLIENT
from orbis.lang.tosca import load
from orbis.model.compare import canonical

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "tosca" / "corpus"
SNAPSHOTS = CORPUS / "snapshots"
FILES = sorted(CORPUS.glob("*.yaml"))


def snapshot_of(path: Path) -> Any:
    template = load(path, sources=CLIENT)  # corpus files sit next to their local files
    data = canonical(template)
    for key in ("elastic", "overlay"):  # only elastic clusters / overlays have this part
        if data.get(key) is None:
            data.pop(key, None)
    # random(N) defaults differ on every load: keep only their shape
    for name, value in template.inputs.items():
        if name.endswith("password") and isinstance(value, str):
            text = json.dumps(data)
            data = json.loads(text.replace(json.dumps(value), json.dumps(f"<random {len(value)}>")))
    data["warnings"] = [w.replace(str(CORPUS) + "/", "") for w in template.warnings]
    return json.loads(json.dumps(data, default=str))


def test_corpus_is_big_enough() -> None:
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_snapshot(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)  # positions in warnings are relative to the corpus folder
    actual = snapshot_of(Path(path.name))
    snapshot = SNAPSHOTS / f"{path.stem}.json"
    if os.environ.get("ORBIS_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        snapshot.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    assert snapshot.is_file(), f"no snapshot for {path.name}: run with ORBIS_UPDATE_SNAPSHOTS=1"
    assert actual == json.loads(snapshot.read_text())
