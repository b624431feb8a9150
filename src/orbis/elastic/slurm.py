"""What Slurm says, read on the front-end over SSH: nodes with their states and pending or
running jobs with what they ask for. Parsing is pure (tested on captured output); `COMMAND` is
the one shell command the monitor runs per cycle."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# one SSH round trip per cycle: nodes, then jobs, separated by a marker line
MARKER = "@@orbis-jobs@@"
# the front-end's UTC offset first: Slurm writes times (LastBusyTime) in its local time
COMMAND = f"date +%z; scontrol -o show nodes 2>&1; echo {MARKER}; scontrol -o show jobs 2>&1"
_OFFSET = re.compile(r"^([+-])(\d\d)(\d\d)\s*\n")
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")
# sinfo-style suffixes: * not responding, ~ powered off, # powering up, % powering down,
# ! pending power down, $ maintenance, @ pending reboot, ^ rebooting, - planned
_SUFFIXES = "*~#%!$@^-"
BUSY = {"ALLOCATED", "ALLOC", "MIXED", "MIX", "COMPLETING", "COMP"}
DOWN = {"DOWN", "FAIL", "FAILING", "ERROR", "NOT_RESPONDING", "UNKNOWN", "FUTURE"}
DRAIN = {"DRAIN", "DRAINED", "DRAINING", "DRNG", "DRAIN*", "MAINT", "RESERVED"}
OFF = {"POWERED_DOWN", "POWER_DOWN", "POWERING_DOWN", "POWERING_UP", "CLOUD"}
# reasons a pending job waits for which more workers are no help
NOT_FOR_NODES = ("Dependency", "BeginTime", "JobHeld", "Held", "AssocGrp", "AssocMax", "QOS",
                 "PartitionDown", "PartitionInactive", "DependencyNeverSatisfied",
                 "Reservation", "Licenses", "InvalidAccount", "InvalidQOS", "PartitionTimeLimit",
                 "AccountNotAllowed", "FrontEndDown", "JobArrayTaskLimit")  # fmt: skip


@dataclass(frozen=True)
class SlurmNode:
    name: str
    state: str  # as Slurm wrote it, e.g. "MIXED", "IDLE+DRAIN", "DOWN*"
    cpus: int
    cpus_alloc: int
    address: str = ""
    last_busy: float | None = None  # epoch seconds Slurm last saw a job on it

    @property
    def flags(self) -> set[str]:
        raw = self.state.upper()
        words = {w.strip(_SUFFIXES) for w in raw.split("+")}
        if raw.rstrip().endswith("*") or "*" in raw:
            words.add("NOT_RESPONDING")
        if "~" in raw:
            words.add("POWERED_DOWN")
        if "#" in raw:
            words.add("POWERING_UP")
        if "%" in raw:
            words.add("POWERING_DOWN")
        return words

    @property
    def kind(self) -> str:
        """busy (a job on it: ALLOCATED, MIXED, COMPLETING), idle, drain, down or off.

        Busy wins over everything: a MIXED or COMPLETING node is never idle, whatever else
        its flags say (CLUES counted MIXED as free)."""
        flags = self.flags
        if flags & BUSY or self.cpus_alloc > 0:
            return "busy"
        if flags & DOWN:
            return "down"
        if flags & OFF:
            return "off"
        if flags & DRAIN:
            return "drain"
        return "idle" if "IDLE" in flags else "down"


@dataclass(frozen=True)
class SlurmJob:
    id: str
    state: str  # PENDING, RUNNING, COMPLETING, ...
    cpus: int  # in all
    nodes: int  # nodes asked for
    memory_mb: int  # per node (0: not said)
    partition: str
    reason: str
    node_list: str = ""

    @property
    def cpus_per_node(self) -> int:
        return -(-self.cpus // max(1, self.nodes))

    @property
    def wants_nodes(self) -> bool:
        """Pending, for a reason more workers could fix (not a dependency, a hold, a limit)."""
        return self.state == "PENDING" and not self.reason.startswith(NOT_FOR_NODES)


@dataclass(frozen=True)
class SlurmView:
    nodes: dict[str, SlurmNode]
    jobs: list[SlurmJob]

    @property
    def pending(self) -> list[SlurmJob]:
        return [j for j in self.jobs if j.wants_nodes]


class SlurmReadError(Exception):
    """The output is not what scontrol writes (Slurm not running, not installed...)."""


def fields(line: str) -> dict[str, str]:
    """`Key=value Key2=value with spaces` → a dict (values run to the next ` Key=`)."""
    marks = list(_FIELD.finditer(line))
    out: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        out.setdefault(m.group(1), line[m.end() : end].strip())
    return out


def parse(output: str) -> SlurmView:
    """Parse COMMAND's output."""
    if MARKER not in output:
        raise SlurmReadError(_short(output) or "no answer")
    offset = None
    found = _OFFSET.match(output)
    if found:
        sign = -1 if found.group(1) == "-" else 1
        offset = sign * (int(found.group(2)) * 3600 + int(found.group(3)) * 60)
        output = output[found.end() :]
    node_part, _, job_part = output.partition(MARKER)
    return SlurmView(parse_nodes(node_part, offset), parse_jobs(job_part))


def parse_nodes(text: str, utc_offset: int | None = None) -> dict[str, SlurmNode]:
    nodes: dict[str, SlurmNode] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("No nodes"):
            continue
        f = fields(line)
        if "NodeName" not in f:
            raise SlurmReadError(_short(line))
        name = f["NodeName"]
        nodes[name] = SlurmNode(name, f.get("State", "UNKNOWN"), _int(f.get("CPUTot")),
                                _int(f.get("CPUAlloc")), f.get("NodeAddr", ""),
                                _epoch(f.get("LastBusyTime", ""), utc_offset))  # fmt: skip
    return nodes


def parse_jobs(text: str) -> list[SlurmJob]:
    jobs: list[SlurmJob] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("No jobs"):
            continue
        f = fields(line)
        if "JobId" not in f:
            raise SlurmReadError(_short(line))
        nodes = _int(f.get("NumNodes", "1").split("-")[0]) or 1
        memory = _memory_mb(f.get("MinMemoryNode") or "")
        if not memory and f.get("MinMemoryCPU"):
            per_cpu = _memory_mb(f["MinMemoryCPU"])
            memory = per_cpu * -(-max(1, _int(f.get("NumCPUs"))) // nodes)
        reason = f.get("Reason", "None")
        jobs.append(SlurmJob(f["JobId"], f.get("JobState", ""), max(1, _int(f.get("NumCPUs"))),
                             nodes, memory, f.get("Partition", ""), reason,
                             f.get("NodeList", "")))  # fmt: skip
    return jobs


def delete_command(name: str) -> str:
    """Forget a dynamic node Slurm still lists (its machine is gone)."""
    return f"scontrol delete nodename={_node_name(name)}"


def drain_command(name: str) -> str:
    """Stop new jobs going to a node, then show it (the caller checks it is still idle)."""
    n = _node_name(name)
    return (
        f"scontrol update nodename={n} state=drain reason=orbis_power_off && "
        f"scontrol -o show node {n}"
    )


def resume_command(name: str) -> str:
    """Give a drained node back (it got a job between the reading and the drain)."""
    return f"scontrol update nodename={_node_name(name)} state=resume"


def _node_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
        raise ValueError(f"not a Slurm node name: {name!r}")
    return name


def _epoch(text: str, utc_offset: int | None) -> float | None:
    """Slurm's local `2026-12-06T17:40:11` as epoch seconds (None without the offset)."""
    if utc_offset is None:
        return None
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone(timedelta(seconds=utc_offset))).timestamp()


def _int(text: str | None) -> int:
    match = re.match(r"\d+", text or "")
    return int(match.group()) if match else 0


def _memory_mb(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip())
    if not match:
        return 0
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[match.group(2)]
    return int(float(match.group(1)) * scale)


def _short(text: str) -> str:
    return " ".join(text.split())[:200]
