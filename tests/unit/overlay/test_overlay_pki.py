"""The overlay's CA: it signs a node's request under the name it chooses, revokes, and its
key is sealed at rest; the plan says who serves, who is a client and who routes a site."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orbis.overlay.model import CentralPoint, Member, Overlay
from orbis.overlay.pki import Authority, RequestError
from orbis.overlay.render import ccd_entry, server_conf
from orbis.overlay.setup import plan, subnet_of


def _request(cn: str = "anything-it-likes") -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .sign(key, hashes.SHA256()))  # fmt: skip
    from cryptography.hazmat.primitives.serialization import Encoding

    return key, csr.public_bytes(Encoding.PEM).decode()


def test_the_ca_signs_the_requests_key_under_its_own_name_and_revokes() -> None:
    ca = Authority.create("infra-1")
    key, csr = _request()
    cert = x509.load_pem_x509_certificate(ca.sign(csr, "worker-b-3", 7, server=False).encode())
    root = x509.load_pem_x509_certificate(ca.cert_pem.encode())
    cert.verify_directly_issued_by(root)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "worker-b-3"
    assert cert.public_key() == key.public_key() and cert.serial_number == 7
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]  # a member cannot act as server
    server = x509.load_pem_x509_certificate(ca.sign(csr, "front-0", 8, server=True).encode())
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    crl = x509.load_pem_x509_crl(ca.crl([7]).encode())
    assert crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(7) is not None
    assert crl.get_revoked_certificate_by_serial_number(8) is None


def test_a_request_that_is_not_one_is_refused() -> None:
    ca = Authority.create("infra-1")
    with pytest.raises(RequestError):
        ca.sign("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
                "x-1", 2, server=False)  # fmt: skip


def _row(name: str, vm_id: int, site: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, vm_id=vm_id, site=site, private_ip=f"10.0.{vm_id}.2",
                           public_ip=None, deleted=False)  # fmt: skip


def test_plan_of_the_two_site_example() -> None:
    overlay = Overlay(
        [CentralPoint("cp", "front", "192.168.255.0/24"),
         CentralPoint("cpb", "cp-backup", "192.168.254.0/24")],
        [Member("router_b", "cp-backup", True, "cp")])  # fmt: skip
    front, cpb, wa, wb = (_row("front", 0, "A"), _row("cp-backup", 1, "B"),
                          _row("worker-a", 2, "A"), _row("worker-b", 3, "B"))  # fmt: skip
    layout = plan(overlay, [front, cpb, wa, wb])  # type: ignore[list-item]
    assert [(cp.component, r.name) for cp, r in layout.servers] == [
        ("cp", "front"), ("cpb", "cp-backup")]
    assert [r.name for r in layout.clients] == ["cp-backup"]  # the backup is the primary's client
    assert {s: r.name for s, r in layout.routers.items()} == {"A": "front", "B": "cp-backup"}
    assert [r.name for r in layout.others] == ["worker-a", "worker-b"]
    # without the primary, the backup serves alone
    alone = plan(overlay, [cpb, wb])  # type: ignore[list-item]
    assert alone.clients == [] and [r.name for _, r in alone.servers] == ["cp-backup"]


def test_ccd_and_server_routes() -> None:
    cp = CentralPoint("cp", "front", "192.168.255.0/24")
    sites = {"A": "10.89.1.0/24", "B": "10.89.2.0/24"}
    assert ccd_entry(cp, 1, "B", sites, routes_site=True).splitlines() == [
        "ifconfig-push 192.168.255.11 255.255.255.0", "iroute 10.89.2.0 255.255.255.0",
        'push "route 10.89.1.0 255.255.255.0"']
    assert "iroute" not in ccd_entry(cp, 4, "B", sites, routes_site=False)
    primary = server_conf(cp, ["10.89.2.0/24"], backup=False)
    assert "route 10.89.2.0 255.255.255.0\n" in primary and "crl-verify" in primary
    backup = server_conf(CentralPoint("b", "cpb", "192.168.254.0/24"), ["10.89.1.0/24"],
                         backup=True)  # fmt: skip
    assert "route 10.89.1.0 255.255.255.0 vpn_gateway 50\n" in backup


def test_subnet_of_reads_ip_addr() -> None:
    out = ("1: lo    inet 127.0.0.1/8 scope host lo\n"
           "2: eth0    inet 10.89.3.7/24 brd 10.89.3.255 scope global eth0\n")
    assert subnet_of("10.89.3.7", out) == "10.89.3.0/24"
    assert subnet_of("10.89.9.9", out) is None
