"""The injection webhook's TLS: cert-manager's files, or a self-made CA and serving certificate
(kept in a Secret shared by the replicas when one is set) that is renewed while the operator
runs and whose CA is patched into the MutatingWebhookConfiguration's caBundle.

The certificates themselves are built by the pure :mod:`curfew.operator.certificates`; the API
calls go through the operator's one client (:mod:`curfew.k8s.webhook`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from curfew.k8s.client import KubeClient
from curfew.k8s.webhook import apply_ca_bundle, apply_tls_secret, read_tls_secret
from curfew.operator.certificates import (
    TlsBundle,
    build_renewed_bundle,
    build_service_names,
    build_tls_bundle,
    renewal_due,
)
from curfew.operator.settings import InjectionWebhookSettings

log = logging.getLogger("curfew.injection")


def _write_private(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` readable by this user only, replacing ``name`` in one rename: a reader
    sees the old file or the new one, never half of one."""
    path = directory / name
    partial = directory / f".{name}.new"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, path)
    return path


_SERVING_FILE = "tls.pem"
"""The serving key and certificate in ONE file: kopf reloads its server when the file changes,
and one rename changes both at once (two files could be read as a mismatched pair)."""


class CertificateRenewer:
    """Renews the self-made serving certificate while the operator runs.

    It wakes when the certificate comes within ``RENEW_BEFORE`` of expiry (and at least every
    ``check_seconds``, to pick up a certificate another replica renewed in the TLS Secret),
    renews it from the same CA — through the Secret when one is set, so replicas share it — and
    rewrites the serving file, which kopf notices and reloads without a restart. A new CA (only
    when the CA itself nears expiry) is patched into the webhook configuration's caBundle.
    """

    def __init__(self, settings: InjectionWebhookSettings, client: KubeClient,
                 names: list[str], bundle: TlsBundle, directory: Path, *,
                 check_seconds: float = 3600.0, retry_seconds: float = 60.0) -> None:
        self.settings = settings
        self.client = client
        self.names = names
        self.bundle = bundle
        self.directory = directory
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds

    def write_serving_file(self) -> Path:
        return _write_private(self.directory, _SERVING_FILE, self.bundle.key + self.bundle.cert)

    def delay(self, now: datetime.datetime | None = None) -> float:
        """Seconds to sleep before the next check."""
        now = now or datetime.datetime.now(datetime.UTC)
        due = (renewal_due(self.bundle, now) - now).total_seconds()
        return min(max(due, 0.0), self.check_seconds)

    async def renew_once(self, now: datetime.datetime | None = None) -> bool:
        """Renew what is due at ``now``; whether the served certificate changed."""
        if self.settings.tls_secret:
            bundle = await apply_shared_bundle(self.client, self.settings, self.names, now)
        else:
            bundle = build_renewed_bundle(self.bundle, self.names, now)
        if bundle == self.bundle:
            return False
        new_ca = bundle.ca_cert != self.bundle.ca_cert
        if new_ca and self.settings.webhook_configuration:
            await apply_ca_bundle(self.client, self.settings.webhook_configuration,
                                  bundle.ca_cert)
        self.bundle = bundle
        self.write_serving_file()
        log.info("webhook serving certificate renewed", extra={"new_ca": new_ca})
        return True

    async def run(self) -> None:
        delay = self.delay()
        while True:
            await asyncio.sleep(delay)
            try:
                await self.renew_once()
                delay = self.delay()
            except Exception as exc:  # the API or the files: log, and try again soon
                log.warning("webhook certificate renewal failed; retrying",
                            extra={"error": str(exc), "retry_seconds": self.retry_seconds})
                delay = self.retry_seconds


async def apply_shared_bundle(client: KubeClient, settings: InjectionWebhookSettings,
                              names: list[str],
                              now: datetime.datetime | None = None) -> TlsBundle:
    """The self-made CA and serving certificate, kept in (and read from) the TLS Secret."""
    stored = await read_tls_secret(client, settings.namespace, settings.tls_secret)
    if stored is None:
        bundle = build_tls_bundle(names)
        stored = await apply_tls_secret(client, settings.namespace, settings.tls_secret,
                                        _files(bundle), replace=False)
    current = TlsBundle(stored["ca.crt"], stored["ca.key"], stored["tls.crt"], stored["tls.key"])
    renewed = build_renewed_bundle(current, names, now)
    if renewed != current:
        await apply_tls_secret(client, settings.namespace, settings.tls_secret, _files(renewed),
                               replace=True)
    return renewed


def _files(bundle: TlsBundle) -> dict[str, bytes]:
    return {"ca.crt": bundle.ca_cert, "ca.key": bundle.ca_key, "tls.crt": bundle.cert,
            "tls.key": bundle.key}


@dataclass(frozen=True)
class ServingTls:
    """What kopf's webhook server is given: its certificate and key files, the CA to announce,
    and the renewer of a self-made certificate (None with cert-manager's files, which kopf
    re-reads itself when they change)."""

    certfile: Path
    pkeyfile: Path
    cadata: bytes | None = None
    cafile: Path | None = None
    renewer: CertificateRenewer | None = None


async def prepare_serving_tls(settings: InjectionWebhookSettings,
                              client: KubeClient) -> ServingTls:
    """cert-manager's files when ``tls_dir`` is set, else a self-made CA (kept in ``tls_secret``
    when set) whose certificate is patched into the webhook configuration."""
    if settings.tls_dir:
        directory = Path(settings.tls_dir)
        ca_file = directory / "ca.crt"
        return ServingTls(certfile=directory / "tls.crt", pkeyfile=directory / "tls.key",
                          cafile=ca_file if ca_file.exists() else None)
    names = [*build_service_names(settings.service, settings.namespace), *settings.extra_names]
    if settings.tls_secret:
        bundle = await apply_shared_bundle(client, settings, names)
    else:
        bundle = build_tls_bundle(names)
    renewer = CertificateRenewer(settings, client, names, bundle,
                                 Path(tempfile.mkdtemp(prefix="curfew-webhook-")))
    serving = renewer.write_serving_file()
    if settings.webhook_configuration:
        changed = await apply_ca_bundle(client, settings.webhook_configuration, bundle.ca_cert)
        log.info("webhook caBundle checked", extra={
            "configuration": settings.webhook_configuration, "patched": changed})
    return ServingTls(certfile=serving, pkeyfile=serving, cadata=bundle.ca_cert, renewer=renewer)
