"""The webhook's self-made TLS: a CA and a serving certificate the API server accepts for the
Service's names, renewed from the same CA only when needed."""

from __future__ import annotations

import datetime

from cryptography import x509

from curfew.operator.certificates import (
    TlsBundle,
    build_renewed_bundle,
    build_service_names,
    build_tls_bundle,
)

NAMES = build_service_names("curfew-webhook", "curfew-system")


def test_the_serving_certificate_covers_the_service_names_and_is_signed_by_the_ca() -> None:
    bundle = build_tls_bundle(NAMES)
    ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    cert = x509.load_pem_x509_certificate(bundle.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == NAMES
    assert "curfew-webhook.curfew-system.svc" in NAMES
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_a_current_bundle_is_kept_as_it_is() -> None:
    bundle = build_tls_bundle(NAMES)
    assert build_renewed_bundle(bundle, NAMES) is bundle


def test_a_new_service_name_renews_the_serving_certificate_from_the_same_ca() -> None:
    bundle = build_tls_bundle(NAMES)
    names = build_service_names("curfew-hooks", "curfew-system")
    renewed = build_renewed_bundle(bundle, names)
    assert renewed.ca_cert == bundle.ca_cert
    assert renewed.cert != bundle.cert
    cert = x509.load_pem_x509_certificate(renewed.cert)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(bundle.ca_cert))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == names


def test_an_ip_address_name_becomes_an_ip_san() -> None:
    bundle = build_tls_bundle(["127.0.0.1"])
    cert = x509.load_pem_x509_certificate(bundle.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_an_unreadable_bundle_is_replaced_by_a_new_one() -> None:
    broken = TlsBundle(b"nope", b"nope", b"nope", b"nope")
    renewed = build_renewed_bundle(broken, NAMES)
    ca = x509.load_pem_x509_certificate(renewed.ca_cert)
    assert ca.not_valid_after_utc > datetime.datetime.now(datetime.UTC)
