"""The private overlay (issue 13) in RADL. IM has no RADL form of the INDIGO Virtual Router
beyond a network's `router` (its TOSCA types become Ansible recipes): Orbis reads three system
features and makes of them the same VR components a TOSCA template has, so that one reader
(`overlay.topology.read_overlay`) checks and models both (docs/compatibility.md, RADL):

    system front (  vrouter = 'central_point' and vrouter.subnet = '192.168.255.0/24' )
    system cpb   (  vrouter = 'central_point,router' )     a backup that routes its site
    system gw    (  vrouter = 'router' and vrouter.central_point = 'front' )
    system solo  (  vrouter = 'client' and vrouter.central_point = 'front' )

The site of each is chosen as for any system (`disk.0.image.url = 'local://siteA'`, or the
cloud of its image); `vrouter.subnet` is a central point's pool (TOSCA `indigovr_subnet`);
`vrouter.central_point` may be left out when there is only one other central point to name.
"""

from __future__ import annotations

from orbis.lang.errors import Problems, suggest
from orbis.lang.radl.values import Merged
from orbis.model.infrastructure import Component, Template
from orbis.overlay.model import CENTRAL_POINT, CLIENT, VROUTER

ROLE, SUBNET, NAMES = "vrouter", "vrouter.subnet", "vrouter.central_point"
ROLES = {"central_point": CENTRAL_POINT, "router": VROUTER, "client": CLIENT}


def component_name(system: str, role: str) -> str:
    return f"{system}_{role}"


def read_vrouter(systems: dict[str, Merged], template: Template, problems: Problems) -> None:
    """Add a VR component to `template` for each role a system's `vrouter` feature gives."""
    roles: dict[str, list[str]] = {}
    for sid, merged in systems.items():
        value = merged.values.get(ROLE)
        if value is None:
            continue
        written = value.items if value.kind == "list" else str(value.plain() or "").split(",")
        roles[sid] = [r.strip() for r in written if r.strip()]
        for role in roles[sid]:
            if role not in ROLES:
                problems.add(value.pos, f"system '{sid}': vrouter role '{role}' is not known",
                             suggest(role, sorted(ROLES)) or "one or more of "
                             + ", ".join(f"'{r}'" for r in ROLES))  # fmt: skip
    points = [sid for sid, rs in roles.items() if "central_point" in rs]
    for sid, merged in systems.items():
        for name in (SUBNET, NAMES):
            if name in merged.values and sid not in roles:
                problems.add(merged.values[name].pos, f"system '{sid}' has {name} but no "
                             "vrouter role", "add vrouter = 'central_point', 'router' or "
                             "'client'")  # fmt: skip
    for sid, rs in roles.items():
        values = systems[sid].values
        for role in (r for r in rs if r in ROLES):
            position = values[ROLE].pos
            component = Component(component_name(sid, role), ROLES[role], sid,
                                  requirements=[("host", sid)], position=position)
            if role == "central_point" and SUBNET in values:
                component.properties["indigovr_subnet"] = values[SUBNET].plain()
            if role != "central_point":
                named = values.get(NAMES)
                target = str(named.plain()) if named is not None else ""
                if target in points:
                    component.requirements.append(
                        ("central_point", component_name(target, "central_point")))
                elif named is not None:
                    problems.add(named.pos, f"vrouter.central_point of system '{sid}' names "
                                 f"'{target}', which is no system with vrouter = "
                                 "'central_point'", suggest(target, points))  # fmt: skip
                    continue
                elif len(others := [p for p in points if p != sid]) == 1:  # the only one
                    component.requirements.append(
                        ("central_point", component_name(others[0], "central_point")))
                # else read_overlay says it has none
            template.components[component.name] = component
