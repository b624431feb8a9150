"""The certificate authority of one infrastructure's overlay.

Each node makes its own key and certificate request on the node (setup.py); the CA only ever
sees requests, signs them with a name it chooses (never the one asked for) and revokes them.
EC P-256 keys: as strong as upstream's RSA-4096 for this use and fast to make on a node.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)
# OpenVPN refuses every peer once the CRL's nextUpdate is past: the list is made anew on each
# change, and long-lived in between
CRL_VALIDITY = datetime.timedelta(days=3650)


class RequestError(ValueError):
    """A certificate request that is not well formed or not self-signed."""


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate and key as PEM text (the key is sealed by the caller at rest)."""

    cert_pem: str
    key_pem: str

    @classmethod
    def create(cls, infrastructure_id: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             f"orbis overlay CA {infrastructure_id}"[:64])])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))  # fmt: skip
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()  # fmt: skip
        return cls(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem)

    def _key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def _cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())

    def sign(self, csr_pem: str, common_name: str, serial: int, *, server: bool) -> str:
        """A certificate for the key of `csr_pem`, named `common_name` (the request's own
        subject is ignored); servers (central points) may act as clients too."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as exc:
            raise RequestError(f"not a certificate request: {exc}") from None
        if not csr.is_signature_valid:
            raise RequestError("the request's signature does not match its key")
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH]
                                                      if server else [])  # fmt: skip
        now = _now()
        ca = self._cert()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                .issuer_name(ca.subject).public_key(csr.public_key()).serial_number(serial)
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + VALIDITY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=True, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                .sign(self._key(), hashes.SHA256()))  # fmt: skip
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def crl(self, revoked: list[int]) -> str:
        """The revocation list naming `revoked` serials, as PEM."""
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self._cert().subject)
                   .last_update(now - datetime.timedelta(minutes=5))
                   .next_update(now + CRL_VALIDITY))  # fmt: skip
        for serial in sorted(set(revoked)):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(now).build())  # fmt: skip
        crl = builder.sign(self._key(), hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM).decode()


def serial_of(cert_pem: str) -> int:
    return x509.load_pem_x509_certificate(cert_pem.encode()).serial_number


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
