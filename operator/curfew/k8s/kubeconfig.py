"""Where the API server is and how to authenticate to it: a kubeconfig, read as kubectl reads it,
or the pod's service account.

Hand-written rather than the official ``kubernetes`` client's loader: importing that package
costs the operator process some 12 MB of its memory budget for a few dozen lines of YAML reading,
and kopf's own kubeconfig login ignores an explicit file, relative paths, ``tokenFile`` and a
missing context. What it reads:

- the file given, else every file of ``$KUBECONFIG`` (merged as kubectl merges them: the first
  file to name a cluster, user or context, or to set ``current-context``, wins), else the
  service account when running in a pod (``KUBERNETES_SERVICE_HOST``), else ``~/.kube/config``;
- of the cluster: ``server``, ``certificate-authority`` / ``certificate-authority-data``,
  ``insecure-skip-tls-verify``;
- of the user: ``token``, ``tokenFile`` (read again for each request, as it may rotate),
  ``client-certificate`` / ``client-certificate-data``, ``client-key`` / ``client-key-data``.

Credential plugins (``exec``, ``auth-provider``), basic auth, impersonation, ``proxy-url`` and
``tls-server-name`` are refused with an error naming the field, never silently ignored: running
with other credentials or another route than the kubeconfig says would be worse than not running.
No error or ``repr`` ever holds a token or a key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"

UNSUPPORTED_USER_FIELDS: Final = {
    "exec": "an exec credential plugin",
    "auth-provider": "an auth-provider plugin",
    "username": "basic authentication",
    "password": "basic authentication",
    "as": "impersonation",
    "as-uid": "impersonation",
    "as-groups": "impersonation",
    "as-user-extra": "impersonation",
}
"""User fields that change who the requests are made as, which this reader does not do."""
UNSUPPORTED_CLUSTER_FIELDS: Final = ("proxy-url", "tls-server-name")
"""Cluster fields that change where and how a connection is made."""
PLUGIN_HINT: Final = ("give the operator a token (kubectl create token ACCOUNT) or a client "
                      "certificate instead, or run it in the cluster with its service account")


class CredentialsError(Exception):
    """No usable credentials: the message names the file and the field at fault."""


@dataclass(frozen=True)
class Connection:
    """Where the API server is and how to authenticate to it. PEM data is held as text; the
    token and the private key are left out of ``repr`` so that no log line can carry them."""

    server: str
    token: str | None = field(default=None, repr=False)
    token_path: str | None = None
    ca_path: str | None = None
    ca_data: str | None = None
    insecure: bool = False
    certificate_path: str | None = None
    certificate_data: str | None = None
    private_key_path: str | None = None
    private_key_data: str | None = field(default=None, repr=False)

    def build_ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=self.ca_path, cadata=self.ca_data)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with self._client_certificate_files() as files:
            if files is not None:
                context.load_cert_chain(*files)
        return context

    @contextlib.contextmanager
    def _client_certificate_files(self) -> Iterator[tuple[str, str] | None]:
        """The client certificate and key as files, for as long as loading them takes: Python's
        ssl module reads them only from files, so data from a kubeconfig goes into a private
        temporary directory (mode 0700) that is removed at once."""
        if not (self.certificate_path or self.certificate_data):
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="curfew-tls-") as tmp:
            paths = []
            for path, data, name in ((self.certificate_path, self.certificate_data, "tls.crt"),
                                     (self.private_key_path, self.private_key_data, "tls.key")):
                if path is None:
                    path = os.path.join(tmp, name)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w", encoding="ascii") as file:
                        file.write(data or "")
                paths.append(path)
            yield paths[0], paths[1]

    def bearer_token(self) -> str | None:
        # Projected service-account tokens rotate: read the file each time rather than once.
        if self.token_path:
            with open(self.token_path, encoding="utf-8") as file:
                return file.read().strip()
        return self.token


def load_connection(kubeconfig: str | None = None, context: str | None = None, *,
                    environ: Mapping[str, str] | None = None,
                    service_account_dir: str = SERVICE_ACCOUNT_DIR) -> Connection:
    """The credentials the operator runs with, looked up as controller-runtime looks them up:
    ``kubeconfig``, else ``$KUBECONFIG``, else the service account in a pod, else
    ``~/.kube/config``. ``context`` overrides the kubeconfig's ``current-context``.

    Raises :class:`CredentialsError` when none is found or what is found cannot be used.
    """
    env = os.environ if environ is None else environ
    if kubeconfig:
        return _from_kubeconfig([kubeconfig], context, "the kubeconfig given")
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p.strip()]
    if listed:
        return _from_kubeconfig(listed, context, "$KUBECONFIG")
    if env.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster(env, Path(service_account_dir))
    default = os.path.expanduser("~/.kube/config")
    if os.path.exists(default):
        return _from_kubeconfig([default], context, "~/.kube/config")
    raise CredentialsError("no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not "
                           "running in a pod (KUBERNETES_SERVICE_HOST is not set)")


def _in_cluster(env: Mapping[str, str], account: Path) -> Connection:
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not port:
        raise CredentialsError("in a pod, KUBERNETES_SERVICE_HOST is set but "
                               "KUBERNETES_SERVICE_PORT is not")
    token = account / "token"
    try:
        if not token.read_text(encoding="utf-8").strip():
            raise CredentialsError(f"the service account token {token} is empty")
    except OSError as exc:
        raise CredentialsError(f"the service account token {token} is not readable: "
                               f"{exc.strerror or exc}") from exc
    ca = account / "ca.crt"
    server_host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return Connection(server=f"https://{server_host}:{port}", token_path=str(token),
                      ca_path=str(ca) if ca.is_file() else None)


def _from_kubeconfig(paths: list[str], context_name: str | None, origin: str) -> Connection:
    merged: dict[str, dict[str, Mapping[str, Any]]] = {"clusters": {}, "users": {},
                                                       "contexts": {}}
    # Where each entry was defined: its relative paths are resolved against that file's folder.
    folders: dict[tuple[str, str], Path] = {}
    current: str | None = None
    found = []
    for raw in paths:
        path = Path(os.path.expanduser(raw))
        doc = _read_file(path, required=len(paths) == 1)
        if doc is None:
            continue
        found.append(path)
        if current is None and doc.get("current-context"):
            current = str(doc["current-context"])
        for section, entry_key in (("clusters", "cluster"), ("users", "user"),
                                   ("contexts", "context")):
            for index, item in enumerate(doc.get(section) or []):
                if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) \
                        or not isinstance(item.get(entry_key) or {}, Mapping):
                    raise CredentialsError(f"kubeconfig {path}: {section}[{index}] is not a "
                                           f"name with a {entry_key} mapping")
                if item["name"] not in merged[section]:
                    merged[section][item["name"]] = item.get(entry_key) or {}
                    folders[(section, item["name"])] = path.parent
    if not found:
        raise CredentialsError(f"none of the kubeconfig files of {origin} exists: "
                               + ", ".join(paths))
    where = f"kubeconfig {found[0]}" if len(found) == 1 else f"kubeconfig ({origin})"
    name = context_name or current
    if not name:
        raise CredentialsError(f"{where}: no current-context is set and no context was given")
    context = merged["contexts"].get(name)
    if context is None:
        known = ", ".join(sorted(merged["contexts"])) or "none"
        raise CredentialsError(f"{where}: context {name!r} not found (contexts: {known})")
    cluster_name, user_name = context.get("cluster"), context.get("user")
    cluster = merged["clusters"].get(str(cluster_name))
    if cluster is None:
        raise CredentialsError(f"{where}: cluster {cluster_name!r} of context {name!r} not found")
    user: Mapping[str, Any] = {}
    if user_name:
        if str(user_name) not in merged["users"]:
            raise CredentialsError(f"{where}: user {user_name!r} of context {name!r} not found")
        user = merged["users"][str(user_name)]
    reader = _Fields(where, folders.get(("clusters", str(cluster_name)), Path.cwd()),
                     f"cluster {cluster_name!r}")
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise CredentialsError(f"{where}: cluster {cluster_name!r} has no https:// or http:// "
                               "server")
    for unsupported in UNSUPPORTED_CLUSTER_FIELDS:
        if cluster.get(unsupported):
            raise CredentialsError(f"{where}: cluster {cluster_name!r} sets {unsupported}, "
                                   "which is not supported")
    ca_path, ca_data = reader.pem(cluster, "certificate-authority")
    insecure = cluster.get("insecure-skip-tls-verify") is True
    if insecure and (ca_path or ca_data):
        # As kubectl: trusting a CA and skipping verification contradict each other.
        raise CredentialsError(f"{where}: cluster {cluster_name!r} sets both a certificate "
                               "authority and insecure-skip-tls-verify")
    return Connection(server=server, ca_path=ca_path, ca_data=ca_data, insecure=insecure,
                      **_user_credentials(user, where, str(user_name),
                                          folders.get(("users", str(user_name)), Path.cwd())))


def _user_credentials(user: Mapping[str, Any], where: str, name: str,
                      folder: Path) -> dict[str, Any]:
    for unsupported, what in UNSUPPORTED_USER_FIELDS.items():
        if user.get(unsupported):
            raise CredentialsError(f"{where}: user {name!r} uses {what} ({unsupported}), which "
                                   f"is not supported: {PLUGIN_HINT}")
    reader = _Fields(where, folder, f"user {name!r}")
    certificate_path, certificate_data = reader.pem(user, "client-certificate")
    key_path, key_data = reader.pem(user, "client-key")
    if bool(certificate_path or certificate_data) != bool(key_path or key_data):
        raise CredentialsError(f"{where}: user {name!r} needs both a client certificate and "
                               "its key, or neither")
    token_path = reader.file(user, "tokenFile")
    token = user.get("token")
    if token is not None and not isinstance(token, str):
        raise CredentialsError(f"{where}: user {name!r}: token is not a string")
    # As client-go: a token file, when given, wins over the token (it is the one kept current).
    return {"token": None if token_path else token or None, "token_path": token_path,
            "certificate_path": certificate_path, "certificate_data": certificate_data,
            "private_key_path": key_path, "private_key_data": key_data}


class _Fields:
    """Reads the file and data fields of one cluster or user entry, with errors naming them."""

    def __init__(self, where: str, folder: Path, entry: str) -> None:
        self.where, self.folder, self.entry = where, folder, entry

    def fail(self, field_name: str, problem: str) -> CredentialsError:
        return CredentialsError(f"{self.where}: {self.entry}: {field_name} {problem}")

    def file(self, entry: Mapping[str, Any], field_name: str) -> str | None:
        value = entry.get(field_name)
        if not value:
            return None
        if not isinstance(value, str):
            raise self.fail(field_name, "is not a path")
        # As kubectl: a relative path is relative to the kubeconfig file that holds it.
        path = self.folder / os.path.expanduser(value)
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise self.fail(field_name, f"{path} is not readable: {exc.strerror or exc}") from exc
        return str(path)

    def pem(self, entry: Mapping[str, Any], field_name: str) -> tuple[str | None, str | None]:
        """``(path, None)`` for ``field_name``, ``(None, pem)`` for ``field_name-data``."""
        raw = entry.get(f"{field_name}-data")
        if raw and entry.get(field_name):
            raise self.fail(field_name, f"and {field_name}-data are both set: give one")
        path = self.file(entry, field_name)
        if not raw:
            return path, None
        if not isinstance(raw, str):
            raise self.fail(f"{field_name}-data", "is not base64 text")
        try:
            data = base64.b64decode("".join(raw.split()), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise self.fail(f"{field_name}-data", "is not base64 of PEM text") from exc
        if "-----BEGIN " not in data:
            raise self.fail(f"{field_name}-data", "does not hold PEM (no -----BEGIN line)")
        # Text before the first block (OpenSSL skips it) would make kopf take the PEM for base64.
        return None, data[data.index("-----BEGIN "):]


def _read_file(path: Path, *, required: bool) -> Mapping[str, Any] | None:
    import yaml  # only the operator reads YAML at runtime, once

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise CredentialsError(f"kubeconfig {path} does not exist") from None
        return None  # as kubectl: a missing file of $KUBECONFIG is skipped
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"kubeconfig {path} is not readable: {exc}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the problem and its line: the error's own text quotes the line, a token maybe.
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise CredentialsError(f"kubeconfig {path} is not YAML: "
                               f"{getattr(exc, 'problem', None) or 'unreadable'}{at}") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise CredentialsError(f"kubeconfig {path} is not a mapping")
    return doc
