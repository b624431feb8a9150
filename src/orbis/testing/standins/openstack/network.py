"""Neutron: networks, subnets, ports, routers, floating IPs, security groups and quotas."""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

from orbis.testing.standins.openstack.booting import Booting
from orbis.testing.standins.openstack.common import (
    Reply,
    _fill,
)
from orbis.testing.standins.openstack.schema import (
    MAX_SUBNET_HOST_ROUTES,
    host_routes_error,
    neutron_errors,
)


class Network(Booting):
    def _neutron_error(self, status: int, kind: str, message: str) -> Reply:
        return Reply(status, _fill(self.errors["neutron"], type=kind, message=message))

    def _add_network(self, net: dict[str, Any]) -> dict[str, Any]:
        subnets = net.pop("subnets", [])
        net |= {"status": "ACTIVE", "admin_state_up": True, "tenant_id": self.project["id"],
                "project_id": self.project["id"], "subnets": []}  # fmt: skip
        net.setdefault("tags", [])
        self.networks[net["id"]] = net
        for subnet in subnets:
            self._add_subnet(subnet | {"network_id": net["id"]})
        return net

    def _add_subnet(self, subnet: dict[str, Any]) -> dict[str, Any]:
        subnet.setdefault("ip_version", 4)
        subnet.setdefault("gateway_ip", str(next(ipaddress.ip_network(subnet["cidr"]).hosts())))
        subnet.setdefault("host_routes", [])
        subnet.setdefault("dns_nameservers", [])
        subnet |= {"enable_dhcp": True, "tags": subnet.get("tags", []),
                   "project_id": self.project["id"], "tenant_id": self.project["id"]}  # fmt: skip
        self.subnets[subnet["id"]] = subnet
        self.networks[subnet["network_id"]]["subnets"].append(subnet["id"])
        return subnet

    def _next_address(self, subnet: dict[str, Any]) -> str:
        index = self._next_ip.get(subnet["id"], 10)
        self._next_ip[subnet["id"]] = index + 1
        return str(ipaddress.ip_network(subnet["cidr"])[index])

    def _add_port(self, network_id: str, device: str, owner: str, groups: list[str],
                  subnet_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        net = self.networks[network_id]
        subnet = self.subnets[subnet_id or net["subnets"][0]]
        port_id = str(uuid.uuid4())
        address = subnet["gateway_ip"] if owner.endswith("router_interface") else \
            self._next_address(subnet)  # fmt: skip
        port = {"id": port_id, "name": "", "network_id": network_id, "device_id": device,
                "device_owner": owner, "status": "ACTIVE", "admin_state_up": True,
                "mac_address": "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3]),
                "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": address}],
                "security_groups": groups, "project_id": self.project["id"], "tags": [],
                "port_security_enabled": True, "allowed_address_pairs": []}  # fmt: skip
        self.ports[port_id] = port
        return port

    def _neutron(self, method: str, path: str, query: dict[str, str], body: Any
                 ) -> tuple[int, Any]:  # fmt: skip
        path = path.removesuffix(".json")
        if m := re.fullmatch(r"/quotas/([^/]+)/details", path):
            return 200, {"quota": self._neutron_quota(m[1])}
        m = re.fullmatch(r"/([a-z-]+)(?:/([^/]+))?(?:/([a-z_]+))?", path)
        collections = {"networks": self.networks, "subnets": self.subnets, "ports": self.ports,
                       "routers": self.routers, "floatingips": self.floatingips,
                       "security-groups": self.security_groups,
                       "security-group-rules": None}  # fmt: skip
        if m is None or m[1] not in collections:
            raise self._neutron_error(404, "HTTPNotFound", f"{path} not found")
        name, item_id, verb = m[1], m[2], m[3]
        key = name.replace("-", "_")
        single = key[:-1] if key != "security_group_rules" else "security_group_rule"
        if name == "security-group-rules":
            return self._sg_rules(method, item_id, body)
        coll = collections[name]
        assert coll is not None
        if item_id is None:
            if method == "GET":
                return 200, {key: [r for r in coll.values() if self._matches(r, query)]}
            if method == "POST":
                self._strict(single, body)
                return 201, {single: self._neutron_create(name, body[single])}
        record = coll.get(item_id or "")
        if record is None:
            raise self._neutron_error(404, f"{single.title()}NotFound",
                                      f"{single} {item_id} could not be found.")  # fmt: skip
        if verb == "tags" and method == "PUT":
            record["tags"] = list(body["tags"])
            return 200, {"tags": record["tags"]}
        if verb in ("add_router_interface", "remove_router_interface"):
            return 200, self._router_interface(record, verb, body)
        if method == "GET":
            return 200, {single: record}
        if method == "PUT":
            self._strict(single, body, update=True)
            return 200, {single: self._neutron_update(name, record, body[single])}
        if method == "DELETE":
            self._neutron_delete(name, record)
            return 204, None
        raise self._neutron_error(405, "HTTPMethodNotAllowed", method)

    def _neutron_create(self, name: str, attrs: dict[str, Any]) -> dict[str, Any]:
        new_id = str(uuid.uuid4())
        attrs = dict(attrs)
        if name == "networks":
            return self._add_network(attrs | {"id": new_id, "router:external": False,
                                              "shared": False, "is_default": False,
                                              "description": attrs.get("description", "")})
        if name == "subnets":
            if attrs.get("network_id") not in self.networks:
                raise self._neutron_error(404, "NetworkNotFound", "network not found")
            cidr = ipaddress.ip_network(attrs["cidr"])
            if any(cidr.overlaps(ipaddress.ip_network(s["cidr"])) for s in self.subnets.values()
                   if s["network_id"] == attrs["network_id"]):  # fmt: skip
                raise self._neutron_error(400, "InvalidInput", "overlapping CIDR")
            if "host_routes" in attrs:
                self._check_host_routes({"id": new_id, "ip_version": attrs.get("ip_version", 4)},
                                        attrs["host_routes"])  # fmt: skip
            return self._add_subnet(attrs | {"id": new_id})
        if name == "routers":
            gateway = attrs.get("external_gateway_info") or None
            if gateway and not self.networks.get(gateway["network_id"], {}).get("router:external"):
                raise self._neutron_error(400, "BadRequest", "network is not external")
            router = attrs | {"id": new_id, "status": "ACTIVE", "tags": [],
                              "external_gateway_info": gateway,
                              "project_id": self.project["id"]}  # fmt: skip
            self.routers[new_id] = router
            return router
        if name == "floatingips":
            net = self.networks.get(attrs.get("floating_network_id", ""))
            if not net or not net["router:external"]:
                raise self._neutron_error(404, "NetworkNotFound", "external network not found")
            if len(self.floatingips) >= self.quota["floating_ips"]:
                raise self._neutron_error(409, "OverQuota",
                    "Quota exceeded for resources: ['floatingip'].")  # fmt: skip
            address = self._next_address(self.subnets[net["subnets"][0]])
            fip = {"id": new_id, "floating_network_id": net["id"], "floating_ip_address": address,
                   "port_id": None, "fixed_ip_address": None, "status": "DOWN", "tags": [],
                   "description": attrs.get("description", ""), "router_id": None,
                   "project_id": self.project["id"]}  # fmt: skip
            self.floatingips[new_id] = fip
            if attrs.get("port_id"):
                self._neutron_update("floatingips", fip, {"port_id": attrs["port_id"]})
            return fip
        if name == "security-groups":
            if len(self.security_groups) >= self.quota["security_groups"]:
                raise self._neutron_error(409, "OverQuota",
                    "Quota exceeded for resources: ['security_group'].")  # fmt: skip
            group = {"id": new_id, "name": attrs.get("name", ""), "tags": [],
                     "description": attrs.get("description", ""), "project_id": self.project["id"],
                     "security_group_rules": []}  # fmt: skip
            self.security_groups[new_id] = group
            return group
        if name == "ports":
            return self._create_port(attrs)
        raise self._neutron_error(400, "BadRequest", f"cannot create {name}")

    def _strict(self, kind: str, body: Any, update: bool = False) -> None:
        """Refuse a port or floating-IP body Neutron would refuse (schema.py)."""
        if kind in ("port", "floatingip"):
            error = neutron_errors(kind, body, update=update)
            if error:
                raise self._neutron_error(400, "HTTPBadRequest", error)

    def _create_port(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Neutron's POST /ports: on an existing network, at a free address of its subnet."""
        net = self.networks.get(attrs["network_id"])
        if net is None:
            raise self._neutron_error(404, "NetworkNotFound",
                                      f"Network {attrs['network_id']} could not be found.")
        asked = (attrs.get("fixed_ips") or [{}])[0]
        subnet_id = asked.get("subnet_id") or (net["subnets"] or [None])[0]
        if subnet_id not in net["subnets"]:
            raise self._neutron_error(400, "InvalidInput",
                                      f"Subnet {subnet_id} is not on network {net['id']}")
        groups = attrs.get("security_groups")
        port = self._add_port(net["id"], attrs.get("device_id", ""),
                              attrs.get("device_owner", ""), [], subnet_id)  # fmt: skip
        address = asked.get("ip_address")
        if address:
            subnet = self.subnets[subnet_id]
            if ipaddress.ip_address(address) not in ipaddress.ip_network(subnet["cidr"]):
                del self.ports[port["id"]]
                raise self._neutron_error(400, "InvalidIpForSubnet", f"IP address {address} is "
                                          f"not a valid IP for the specified subnet.")  # fmt: skip
            taken = {f["ip_address"] for p in self.ports.values() for f in p["fixed_ips"]}
            if address in taken:
                del self.ports[port["id"]]
                raise self._neutron_error(409, "IpAddressAlreadyAllocated", f"IP address "
                    f"{address} already allocated in subnet {subnet_id}")  # fmt: skip
            port["fixed_ips"] = [{"subnet_id": subnet_id, "ip_address": address}]
        if groups is None and attrs.get("port_security_enabled", True) is not False:
            groups = [g["id"] for g in self.security_groups.values() if g["name"] == "default"]
        try:
            return self._update_port(port, {k: v for k, v in attrs.items() if k in (
                "name", "description", "port_security_enabled", "allowed_address_pairs")}
                | {"security_groups": groups or []})  # fmt: skip
        except Exception:
            del self.ports[port["id"]]
            raise

    def _neutron_update(self, name: str, record: dict[str, Any], attrs: dict[str, Any]
                        ) -> dict[str, Any]:  # fmt: skip
        if name == "floatingips" and "port_id" in attrs:
            port = self.ports.get(attrs["port_id"] or "")
            if attrs["port_id"] and port is None:
                raise self._neutron_error(404, "PortNotFound", "port not found")
            # a floating IP needs a router between the pool and the port's network
            if port and not any((r.get("external_gateway_info") or {}).get("network_id") ==
                                record["floating_network_id"] and any(
                                    p["device_id"] == r["id"] and p["network_id"] ==
                                    port["network_id"] for p in self.ports.values())
                                for r in self.routers.values()):  # fmt: skip
                raise self._neutron_error(404, "ExternalGatewayForFloatingIPNotFound",
                    f"External network {record['floating_network_id']} is not reachable from "
                    f"subnet {port['fixed_ips'][0]['subnet_id']}.")  # fmt: skip
            self._float(record, port)
            record |= {"port_id": attrs["port_id"], "status": "ACTIVE" if port else "DOWN",
                       "fixed_ip_address": port["fixed_ips"][0]["ip_address"] if port else None}
            return record
        if name == "routers" and "external_gateway_info" in attrs:
            record["external_gateway_info"] = attrs["external_gateway_info"] or None
            return record
        if name == "ports":
            return self._update_port(record, attrs)
        if name == "subnets" and "host_routes" in attrs:
            self._check_host_routes(record, attrs["host_routes"])
            record["host_routes"] = [dict(r) for r in attrs["host_routes"]]
        record |= {k: v for k, v in attrs.items() if k in ("name", "description")}
        return record

    def _check_host_routes(self, subnet: dict[str, Any], routes: Any) -> None:
        """Neutron's checks: the attribute's format (schema.host_routes_error), then the
        plugin's: at most max_subnet_host_routes, each of the subnet's IP version."""
        error = host_routes_error(routes)
        if error:
            raise self._neutron_error(400, "HTTPBadRequest", error)
        if len(routes) > MAX_SUBNET_HOST_ROUTES:
            raise self._neutron_error(400, "HostRoutesExhausted", f"Unable to complete "
                f"operation for {subnet['id']}. The number of host routes exceeds the limit "
                f"{MAX_SUBNET_HOST_ROUTES}.")  # fmt: skip
        for route in routes:
            for key in ("nexthop", "destination"):
                if ipaddress.ip_network(route[key]).version != subnet["ip_version"]:
                    raise self._neutron_error(400, "InvalidInput", "Invalid input for "
                        f"operation: {key} '{route[key]}' does not match the ip_version "
                        f"'{subnet['ip_version']}'.")  # fmt: skip

    def _update_port(self, port: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
        """Neutron's rules: no security groups nor address pairs without port security."""
        groups = attrs.get("security_groups", port["security_groups"])
        secured = attrs.get("port_security_enabled", port["port_security_enabled"])
        pairs = attrs.get("allowed_address_pairs", port["allowed_address_pairs"])
        if any(g not in self.security_groups for g in groups):
            raise self._neutron_error(404, "SecurityGroupNotFound", f"groups {groups} not found")
        if not secured and attrs.get("security_groups"):  # groups asked for, no port security
            raise self._neutron_error(400, "PortSecurityAndIPRequiredForSecurityGroups",
                "Port security must be enabled and port must have an IP address in order to "
                "use security groups.")  # fmt: skip
        if not secured and groups:
            raise self._neutron_error(409, "PortSecurityPortHasSecurityGroup", "Port has "
                "security group associated. Cannot disable port security or ip address until "
                "security group is removed")  # fmt: skip
        if not secured and pairs:
            raise self._neutron_error(409, "AddressPairAndPortSecurityRequired", "Port Security "
                "must be enabled in order to have allowed address pairs on a port.")  # fmt: skip
        for pair in pairs:
            try:
                ipaddress.ip_network(pair["ip_address"], strict=False)
            except (KeyError, ValueError):
                raise self._neutron_error(400, "InvalidInput",
                    f"Invalid allowed address pair {pair}") from None  # fmt: skip
        port |= {"security_groups": list(groups), "port_security_enabled": bool(secured),
                 "allowed_address_pairs": [{"mac_address": port["mac_address"]} | p
                                           for p in pairs]}  # fmt: skip
        port |= {k: v for k, v in attrs.items() if k in ("name", "description")}
        return port

    def _neutron_delete(self, name: str, record: dict[str, Any]) -> None:
        used_by = [p for p in self.ports.values() if p["device_owner"] != "network:dhcp"]
        if name == "networks" and any(p["network_id"] == record["id"] for p in used_by):
            raise self._neutron_error(409, "NetworkInUse", f"Unable to complete operation on "
                f"network {record['id']}. There are one or more ports still in use.")  # fmt: skip
        if name == "routers" and any(p["device_id"] == record["id"] for p in used_by):
            raise self._neutron_error(409, "RouterInUse",
                                      f"Router {record['id']} still has ports")  # fmt: skip
        if name == "security-groups" and self.sg_delete_conflicts > 0:
            self.sg_delete_conflicts -= 1  # a port elsewhere still holds it, for a while
            raise self._neutron_error(409, "SecurityGroupInUse",
                                      f"Security Group {record['id']} in use.")  # fmt: skip
        if name == "security-groups" and any(record["id"] in p["security_groups"]
                                             for p in self.ports.values()):  # fmt: skip
            raise self._neutron_error(409, "SecurityGroupInUse",
                                      f"Security Group {record['id']} in use.")  # fmt: skip
        if name == "floatingips" and record.get("port_id"):
            self._float(record, None)  # released while on a server: off its container
        if name == "networks":
            if self.boot:
                self.boot.remove_network(record["id"])
            for subnet_id in record["subnets"]:
                self.subnets.pop(subnet_id, None)
        if name == "subnets":
            self.networks[record["network_id"]]["subnets"].remove(record["id"])
        getattr(self, name.replace("-", "_")).pop(record["id"])

    def _router_interface(self, router: dict[str, Any], verb: str, body: dict[str, Any]
                          ) -> dict[str, Any]:  # fmt: skip
        subnet = self.subnets.get(body.get("subnet_id", ""))
        if subnet is None:
            raise self._neutron_error(404, "SubnetNotFound", "subnet not found")
        if verb == "add_router_interface":
            port = self._add_port(subnet["network_id"], router["id"], "network:router_interface",
                                  [], subnet["id"])  # fmt: skip
        else:
            found = [p for p in self.ports.values() if p["device_id"] == router["id"]
                     and p["fixed_ips"][0]["subnet_id"] == subnet["id"]]  # fmt: skip
            if not found:
                raise self._neutron_error(404, "RouterInterfaceNotFoundForSubnet",
                                          "no interface for that subnet")  # fmt: skip
            port = found[0]
            del self.ports[port["id"]]
        return {"id": router["id"], "subnet_id": subnet["id"], "port_id": port["id"],
                "network_id": subnet["network_id"], "tenant_id": self.project["id"]}  # fmt: skip

    def _sg_rules(self, method: str, rule_id: str | None, body: Any) -> tuple[int, Any]:
        if method == "POST":
            rule = dict(body["security_group_rule"])
            group = self.security_groups.get(rule.get("security_group_id", ""))
            if group is None:
                raise self._neutron_error(404, "SecurityGroupNotFound", "group not found")
            fields = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                      "remote_ip_prefix", "remote_group_id")  # fmt: skip
            rule.setdefault("ethertype", "IPv4")
            for old in group["security_group_rules"]:
                if all(old.get(f) == rule.get(f) for f in fields):
                    raise self._neutron_error(409, "SecurityGroupRuleExists",
                        f"Security group rule already exists. Rule id is {old['id']}.")  # fmt: skip
            rule["id"] = str(uuid.uuid4())
            group["security_group_rules"].append(rule)
            return 201, {"security_group_rule": rule}
        rules = [r for g in self.security_groups.values() for r in g["security_group_rules"]]
        if method == "GET" and rule_id is None:
            return 200, {"security_group_rules": rules}
        raise self._neutron_error(404, "SecurityGroupRuleNotFound", f"rule {rule_id}")

    def _neutron_quota(self, project: str) -> dict[str, Any]:
        used = {"floatingip": len(self.floatingips), "security_group": len(self.security_groups),
                "network": len(self.networks), "router": len(self.routers)}  # fmt: skip
        limits = {"floatingip": self.quota["floating_ips"],
                  "security_group": self.quota["security_groups"], "network": 100, "router": 10}
        return {k: {"used": used[k], "limit": limits[k], "reserved": 0} for k in used}

