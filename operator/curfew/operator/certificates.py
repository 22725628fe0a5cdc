"""The injection webhook's TLS material when cert-manager is not used: a self-signed CA (its
certificate is the MutatingWebhookConfiguration's caBundle) and a serving certificate for the
webhook Service's DNS names, signed by it. Pure: PEM bytes in and out, no files, no API."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVING_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)
"""A serving certificate this close to expiry is replaced (by the same CA), at startup and by
the running operator."""


@dataclass(frozen=True)
class TlsBundle:
    """PEM-encoded CA certificate and key, and the serving certificate and key it signed."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def build_service_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use to reach a Service (it dials ``<svc>.<ns>.svc``)."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.cluster.local"]


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _serving(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
             names: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVING_DAYS))
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_encipherment=False, content_commitment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def build_tls_bundle(names: list[str]) -> TlsBundle:
    """A new CA and a serving certificate for ``names`` (DNS names or IP addresses)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "curfew-injection-ca")])
    now = _now()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, key_encipherment=False, content_commitment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert, key = _serving(ca_cert, ca_key, names)
    return TlsBundle(ca_cert.public_bytes(serialization.Encoding.PEM), _key_pem(ca_key),
                     cert, key)


def renewal_due(bundle: TlsBundle, now: datetime.datetime | None = None) -> datetime.datetime:
    """When ``bundle``'s serving certificate (or its CA, if sooner) comes within
    ``RENEW_BEFORE`` of expiry; ``now`` when either cannot be read."""
    now = now or _now()
    try:
        ends = min(x509.load_pem_x509_certificate(pem).not_valid_after_utc
                   for pem in (bundle.cert, bundle.ca_cert))
    except ValueError:
        return now
    return ends - RENEW_BEFORE


def build_renewed_bundle(bundle: TlsBundle, names: list[str],
                         now: datetime.datetime | None = None) -> TlsBundle:
    """``bundle`` itself while its serving certificate covers ``names`` and is not near expiry
    (at ``now``, default the current time); else a new serving certificate from the same CA (so
    the caBundle stays valid), or a whole new bundle when the CA itself is near expiry or
    unreadable."""
    now = now or _now()
    try:
        ca_cert = x509.load_pem_x509_certificate(bundle.ca_cert)
        ca_key = serialization.load_pem_private_key(bundle.ca_key, password=None)
        cert = x509.load_pem_x509_certificate(bundle.cert)
    except ValueError:
        return build_tls_bundle(names)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey) \
            or ca_cert.not_valid_after_utc - RENEW_BEFORE < now:
        return build_tls_bundle(names)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = x509.SubjectAlternativeName([])
    covered = set(sans.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    if set(names) <= covered and cert.issuer == ca_cert.subject \
            and cert.not_valid_after_utc - RENEW_BEFORE > now:
        return bundle
    new_cert, new_key = _serving(ca_cert, ca_key, names)
    return TlsBundle(bundle.ca_cert, bundle.ca_key, new_cert, new_key)
