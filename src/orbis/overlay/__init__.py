"""The private overlay network of an infrastructure across sites (issue 13, docs/overlay.md).

IM's INDIGO Virtual Router, redone: an OpenVPN star whose central point runs on a node with a
public address, one router per site that announces its site's subnet, standalone clients; and,
beyond upstream, a backup central point on another site.

- `model.py`: the topology as data (members, roles, subnets, addresses).
- `topology.py`: reading it from a template's VR components and RADL `router` networks, with
  the checks that point at file:line.
- `rights.py`: which nodes need which kernel rights (tun device, NET_ADMIN, forwarding).
- `pki.py`: the infrastructure's certificate authority (signs CSRs, revokes, CRL).
- `render.py`: OpenVPN server/client configurations, ccd entries and route commands.
- `state.py`: what the service keeps between runs (CA, issued certificates), in the store.
- `setup.py`: bringing it up on the nodes over SSH, and revoking a removed node.
"""
