"""The Kubernetes back-end: nodes and container apps on a cluster, through the official client.

Auth line (as IM writes it): `type = Kubernetes; host = <API URL>; token = ...` (or
`username` + `password`), optional `namespace`. Without a namespace each infrastructure gets
its own, `orbis-<infrastructure id>`, and `cleanup` deletes it; with one, every object is found
(and removed) by its Orbis labels.

A node is a **1-replica Deployment** rather than a bare pod: the cluster recreates the pod when
its worker dies or when it is deleted (reboot), scaling to 0 and back gives stop/start, and a new
pod template gives alter — a bare pod can do none of these. Next to it: a Secret with the
infrastructure's public key, mounted as root's `authorized_keys` (there is no cloud-init in a
container, so `user_data` is not used and Ansible logs in as root to an image that runs sshd), a
Service for its ports plus SSH (NodePort or LoadBalancer when public, ClusterIP otherwise) and a
PVC per data volume (storage class = volume type). Every object carries the Orbis labels and
`orbis.name`, the Deployment's name, so one selector finds a node's whole set.

Container apps (`apply_app`) are a Deployment with a ConfigMap for their text files and a Secret
for their base64 ones, PVCs and Services; an app whose first published port has an endpoint URL
also gets an Ingress for that host and path. Operator options: `ingress_class` (the Ingress's
`ingressClassName`; none by default) and `cluster_issuer` (https Ingresses are annotated for
cert-manager, which then makes their TLS Secret; without it the Secret named in `tls` must
come from elsewhere, or the controller serves its default certificate).

Pitfalls kept: a quota that refuses the pods does not fail the Deployment's creation, it shows up
later as its `ReplicaFailure` condition; ImagePullBackOff / CrashLoopBackOff leave the pod
Pending/Running, so states come from container reasons first and phases second; a public NodePort
node is reached on the cluster's address at the node port given to port 22.

The package, one module per concern (each a mixin over `session.KubernetesSession`):

- `session.py`: the API client, typed errors, names, labels, namespaces;
- `objects.py`: Deployments, Services, PVCs, resources, deletion by label;
- `nodes.py`: the node verbs (launch, inspect, list, stop/start, reboot, resize, destroy,
  cleanup) and pod states;
- `apps.py`: container apps (`apply_app`, `remove_app`), their config files and Ingress;
- `quotas.py`: ResourceQuotas as IM's quota names;
- `provider.py`: `KubernetesProvider`, the mixins put together.
"""

# callers and tests import these from orbis.providers.kubernetes
from orbis.providers.kubernetes.apps import BASE64
from orbis.providers.kubernetes.objects import CERT_MANAGER_ISSUER
from orbis.providers.kubernetes.provider import KubernetesProvider
from orbis.providers.kubernetes.session import LABEL_APP, LABEL_NAME, SSH_PORT

__all__ = [
    "BASE64",
    "CERT_MANAGER_ISSUER",
    "KubernetesProvider",
    "LABEL_APP",
    "LABEL_NAME",
    "SSH_PORT",
]
