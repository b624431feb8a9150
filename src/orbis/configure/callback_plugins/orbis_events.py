"""Ansible callback that writes one JSON line per task result to $ORBIS_EVENTS_FILE.

Orbis runs one ansible-playbook per configuration level, covering several nodes and steps; this
lets it keep each node's output per step, and follow progress live.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: orbis_events
type: aggregate
short_description: write task results as JSON lines for Orbis
description: Writes one JSON line per task start and result, keyed by host and Orbis step.
requirements: [ORBIS_EVENTS_FILE in the environment]
"""

_KEEP = ("msg", "stdout", "stderr", "rc", "changed", "skip_reason", "failed_when_result")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "orbis_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get("ORBIS_EVENTS_FILE")
        self._out = open(path, "a", buffering=1) if path else None  # noqa: SIM115
        self._step = ""

    def _write(self, **event: object) -> None:
        if self._out is not None:
            event["t"] = time.time()
            self._out.write(json.dumps(event, default=str) + "\n")

    def v2_playbook_on_play_start(self, play):
        variables = play.get_vars() or {}
        self._step = str(variables.get("orbis_step", play.get_name()))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._write(kind="task", step=self._step, task=task.get_name())

    def _result(self, status: str, result) -> None:
        data = {k: result._result[k] for k in _KEEP if k in result._result}
        if "results" in result._result:  # loops: keep each item's message
            data["items"] = [
                {k: r.get(k) for k in ("item", "msg", "rc") if k in r}
                for r in result._result["results"]
                if isinstance(r, dict)
            ]
        self._write(
            kind="result",
            status=status,
            step=self._step,
            host=result._host.get_name(),
            task=result._task.get_name(),
            result=data,
        )

    def v2_runner_on_ok(self, result):
        self._result("changed" if result._result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed.keys()):
            self._write(kind="stats", host=host, summary=stats.summarize(host))
        if self._out is not None:
            self._out.close()
            self._out = None
