"""What a monitor remembers between cycles, kept in the store's `meta` table under
`elastic:<infrastructure id>` (JSON), so a restarted or another server resumes from it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from orbis.store.repository import Store

PREFIX = "elastic:"
KEEP_DECISIONS = 40


@dataclass
class MonitorState:
    idle_since: dict[str, float] = field(default_factory=dict)  # vm id → epoch seconds
    down_since: dict[str, float] = field(default_factory=dict)
    join_failures: dict[str, int] = field(default_factory=dict)  # pool → failures
    started: dict[str, float] = field(default_factory=dict)  # vm id → when it was restarted
    last_power_on: float | None = None
    last_power_off: float | None = None
    reported: list[str] = field(default_factory=list)  # reasons said last cycle (said once)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # the latest, newest last
    view: dict[str, Any] = field(default_factory=dict)  # the last reading, for `orbis elastic`
    error: str = ""  # why the last reading failed, if it did

    def record(self, at: float, action: str, reason: str) -> None:
        self.decisions.append({"at": at, "action": action, "reason": reason})
        del self.decisions[:-KEEP_DECISIONS]


def key(infra_id: str) -> str:
    return PREFIX + infra_id


def load(store: Store, infra_id: str) -> MonitorState:
    text = store.meta(key(infra_id))
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    known = MonitorState.__dataclass_fields__
    return MonitorState(**{k: v for k, v in data.items() if k in known})


def save(store: Store, infra_id: str, state: MonitorState) -> None:
    store.put_meta(key(infra_id), json.dumps(asdict(state)))


def forget(store: Store, infra_id: str) -> None:
    store.drop_meta(key(infra_id))


def known_ids(store: Store) -> list[str]:
    return [k[len(PREFIX):] for k in store.meta_keys(PREFIX)]
