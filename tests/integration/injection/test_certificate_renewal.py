"""The self-made serving certificate is renewed while the webhook server runs: a real HTTPS
server (kopf's, as the operator builds it) changes the certificate it presents without a
restart, still signed by the CA the webhook configuration trusts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from curfew.k8s.client import Connection, KubeClient
from curfew.operator.certificates import (
    RENEW_BEFORE,
    SERVING_DAYS,
    build_tls_bundle,
    renewal_due,
)
from curfew.operator.injection import build_webhook_server
from curfew.operator.settings import InjectionWebhookSettings
from curfew.operator.webhook_tls import CertificateRenewer

pytestmark = pytest.mark.timeout(30)

NAMES = ["curfew-webhook", "127.0.0.1"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(**overrides: Any) -> InjectionWebhookSettings:
    values: dict[str, Any] = {
        "enabled": True, "host": "127.0.0.1", "port": _free_port(), "namespace": "curfew",
        "extra_names": ["127.0.0.1"], "tls_secret": "", "webhook_configuration": ""}
    values.update(overrides)
    return InjectionWebhookSettings(**values)


async def _served_certificate(port: int, ca: bytes) -> x509.Certificate:
    """The certificate the server presents, verified against ``ca`` for 127.0.0.1."""
    context = ssl.create_default_context(cadata=ca.decode())
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


def _nowhere() -> KubeClient:
    """A client of an API server that is not there (any request fails to connect)."""
    return KubeClient(Connection(server=f"http://127.0.0.1:{_free_port()}"), timeout=2)


async def _no_review(*_: Any, **__: Any) -> dict[str, Any]:
    raise AssertionError("no review is posted in these tests")


def test_the_renewal_is_due_a_margin_before_the_serving_certificate_expires() -> None:
    bundle = build_tls_bundle(NAMES)
    expires = x509.load_pem_x509_certificate(bundle.cert).not_valid_after_utc
    assert renewal_due(bundle) == expires - RENEW_BEFORE
    renewer = CertificateRenewer(_settings(), _nowhere(), NAMES, bundle, Path("."),
                                 check_seconds=3600)
    # Far from expiry, the renewer wakes on its regular check; past the margin, at once.
    assert renewer.delay() == 3600
    assert renewer.delay(expires - RENEW_BEFORE + datetime.timedelta(seconds=1)) == 0
    assert renewer.delay(expires - RENEW_BEFORE - datetime.timedelta(seconds=90)) \
        == pytest.approx(90)


async def test_the_running_server_presents_a_renewed_certificate_from_the_same_ca() -> None:
    settings = _settings()
    server = await build_webhook_server(settings, _nowhere())
    renewer = server.renewer
    assert renewer is not None
    server.file_check_interval = 0.05  # kopf's wait for changed files; 60 s by default
    ca = renewer.bundle.ca_cert
    configs: list[Any] = []

    async def serve() -> None:
        async for config in server(_no_review):
            configs.append(config)

    serving = asyncio.create_task(serve())
    try:
        while not configs:
            await asyncio.sleep(0.01)
        first = await _served_certificate(settings.port, ca)
        assert not await renewer.renew_once()  # nothing due today

        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            days=SERVING_DAYS) - RENEW_BEFORE + datetime.timedelta(days=1)
        assert await renewer.renew_once(later)
        assert renewer.bundle.ca_cert == ca  # the caBundle stays valid

        async def renewed() -> x509.Certificate:
            while True:
                with contextlib.suppress(OSError):
                    cert = await _served_certificate(settings.port, ca)
                    if cert.serial_number != first.serial_number:
                        return cert
                await asyncio.sleep(0.05)

        second = await asyncio.wait_for(renewed(), 10)
        assert second.issuer == first.issuer
        assert second.not_valid_after_utc >= first.not_valid_after_utc
        assert len(configs) >= 2  # kopf restarted its listener with the new file
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def test_a_failing_renewal_is_logged_and_retried_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # The TLS Secret lives behind an API server that is not there.
    settings = _settings(tls_secret="curfew-webhook-tls")
    bundle = build_tls_bundle(NAMES)
    client = _nowhere()
    renewer = CertificateRenewer(settings, client, NAMES, bundle, tmp_path,
                                 check_seconds=0.01, retry_seconds=0.01)
    caplog.set_level(logging.WARNING, logger="curfew.injection")
    running = asyncio.create_task(renewer.run())
    try:
        async def failures() -> None:
            while sum("renewal failed" in r.getMessage() for r in caplog.records) < 2:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(failures(), 20)
        assert not running.done()
        assert renewer.bundle == bundle
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await client.close()
