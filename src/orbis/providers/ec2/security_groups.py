"""Security groups: the infrastructure-wide one and one per template network, with the
members' own traffic, the network's outports, the node's ports and SSH where it is reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from orbis.model.infrastructure import Network, PortSpec
from orbis.providers.base import LABEL_INFRASTRUCTURE, NodeSpec
from orbis.providers.ec2.errors import _code
from orbis.providers.ec2.session import EC2Session, _tags


def _rule(port: PortSpec) -> dict[str, Any]:
    proto = port.protocol.lower()
    cidr = port.remote_cidr or "0.0.0.0/0"
    if proto == "icmp":  # ICMP takes type/code, -1 = all
        return {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": cidr}]}
    return {
        "IpProtocol": proto,
        "FromPort": port.port,
        "ToPort": port.range_end or port.port,
        "IpRanges": [{"CidrIp": cidr}],
    }


def _covered(rule: Mapping[str, Any], permissions: list[dict[str, Any]]) -> bool:
    """Whether a group's permissions (as EC2 describes them) already grant `rule`."""
    key = (rule["IpProtocol"], rule["FromPort"], rule["ToPort"])
    for have in permissions:
        if (have.get("IpProtocol"), have.get("FromPort"), have.get("ToPort")) != key:
            continue
        cidrs = {r.get("CidrIp") for r in have.get("IpRanges") or []}
        groups = {g.get("GroupId") for g in have.get("UserIdGroupPairs") or []}
        if all(r["CidrIp"] in cidrs for r in rule.get("IpRanges") or []) and all(
            g["GroupId"] in groups for g in rule.get("UserIdGroupPairs") or []
        ):
            return True
    return False


def _dedupe(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique: list[dict[str, Any]] = []
    for rule in rules:
        if rule not in unique:
            unique.append(rule)
    return unique


class SecurityGroups(EC2Session):
    """The security groups of a node, made or completed under the infrastructure lock."""

    def _security_groups(
        self, ec2: Any, spec: NodeSpec, vpc: str, nets: list[Network]
    ) -> list[str]:
        """The infrastructure-wide group (members reach each other) and one group per net:
        self rules, the net's outports, the node's ports on its public net, 22/tcp on public
        or proxied nets."""
        infra = spec.infrastructure_id
        groups = [self._group(ec2, infra, vpc, f"orbis-{infra}", [])]
        public_net = next((n for n in nets if n.public), None)
        for net in nets:
            ports = list(net.outports)
            if net is public_net or (public_net is None and net is nets[0]):
                ports += spec.ports
            if net.public or net.proxy_host:
                ports.append(PortSpec(22))
            groups.append(
                self._group(ec2, infra, vpc, net.sg_name or f"orbis-{infra}-{net.name}", ports)
            )
        return groups

    def _group(self, ec2: Any, infra: str, vpc: str, name: str, ports: list[PortSpec]) -> str:
        """The group `name`, made if missing. A group of this infrastructure gets the rules it
        still lacks: the nodes sharing a net's group each bring their own ports, and a run may
        have stopped between creating the group and filling it. Others' groups are left as
        they are."""

        def lookup() -> dict[str, Any] | None:
            filters = [
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [vpc]},
            ]
            found = ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
            return dict(found[0]) if found else None

        with self._infra_lock(infra):
            group = lookup()
            if group is None:
                try:
                    made = ec2.create_security_group(
                        GroupName=name,
                        VpcId=vpc,
                        Description="Security group created by Orbis",
                        TagSpecifications=self._tag_spec("security-group", self._labels(infra)),
                    )["GroupId"]
                    group = {"GroupId": made, "Tags": [{"Key": LABEL_INFRASTRUCTURE,
                                                        "Value": infra}]}  # fmt: skip
                except botocore.exceptions.ClientError as err:
                    if _code(err) != "InvalidGroup.Duplicate":
                        raise
                    # another process made it just now
                    group = self._wait(f"security group {name}", lookup, self.launch_timeout)
            group_id = str(group["GroupId"])
            if _tags(group).get(LABEL_INFRASTRUCTURE) != infra:
                return group_id
            rules = [
                {
                    "IpProtocol": proto,
                    "FromPort": 0,
                    "ToPort": 65535,
                    "UserIdGroupPairs": [{"GroupId": group_id}],
                }
                for proto in ("tcp", "udp")
            ]
            rules += [_rule(p) for p in ports]
            have = group.get("IpPermissions") or []
            for rule in _dedupe(rules):
                if _covered(rule, have):
                    continue
                try:
                    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[rule])
                except botocore.exceptions.ClientError as err:
                    if _code(err) != "InvalidPermission.Duplicate":
                        raise
            return group_id
