"""The one way labkit talks HTTP to an API server: where it is, how to send, and errors converted once.

- :class:`Endpoint`: the server's address, its TLS context and the token, from the official
  client's kubeconfig loader (:mod:`labkit.kube.client`) or from a cluster's own files.
- :class:`Transport`: sends one request and returns (status, body bytes). The default keeps one
  connection alive and retries once when the server closed it; :class:`MockTransport` answers
  from a function, so ``kube/`` and the Lab can be tested without a daemon.
- :class:`Api`: JSON requests over a transport, with a discovery cache; a connection failure
  becomes :class:`~labkit.errors.ClusterError` here, and nowhere else.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labkit.errors import ClusterError, UsageError


@dataclass(frozen=True)
class Endpoint:
    """An API server: its URL, the TLS context that trusts it, and the headers that authenticate."""

    server: str  # https://127.0.0.1:6443, possibly with a path prefix
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    auth: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_token(cls, server: str, token: str, ca_file: str | Path | None) -> Endpoint:
        """A server trusted through ``ca_file`` and reached with a bearer token."""
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        return cls(server.rstrip("/"), context, {"Authorization": f"Bearer {token}"})

    @classmethod
    def from_kubeconfig(cls, path: str | Path, context: str | None = None) -> Endpoint:
        """From a kubeconfig file, read with the official client's loader."""
        from kubernetes import client, config  # deferred: the import costs a quarter of a second

        conf = client.Configuration()
        try:
            config.load_kube_config(config_file=str(path), context=context, client_configuration=conf)
        except (config.ConfigException, OSError) as e:
            raise ClusterError(f"cannot use kubeconfig {path}: {e}") from e
        return cls.from_configuration(conf)

    @classmethod
    def from_configuration(cls, conf: Any) -> Endpoint:
        """From the official client's ``Configuration`` (what its kubeconfig loader made)."""
        server = conf.host.rstrip("/")
        context: ssl.SSLContext | None = None
        if server.startswith("https"):
            if conf.verify_ssl:
                context = ssl.create_default_context(cafile=conf.ssl_ca_cert)
            else:  # the kubeconfig says insecure-skip-tls-verify
                context = ssl._create_unverified_context()
            if conf.cert_file and conf.key_file:
                context.load_cert_chain(conf.cert_file, conf.key_file)
        auth = conf.get_api_key_with_prefix("authorization") or conf.get_api_key_with_prefix("BearerToken")
        return cls(server, context, {"Authorization": auth} if auth else {})

    @property
    def _parts(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.server)

    @property
    def host(self) -> str:
        """The server's host name or address."""
        return self._parts.hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The server's port."""
        return self._parts.port or (443 if self.tls else 80)

    @property
    def base_path(self) -> str:
        """The path prefix every request path goes under ("" for most servers)."""
        return self._parts.path.rstrip("/")

    @property
    def tls(self) -> bool:
        """Whether the server speaks HTTPS."""
        return self._parts.scheme == "https"

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        """A new (keep-alive) connection to the server."""
        if self.tls:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self.ssl_context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The authentication headers, plus ``extra``."""
        return {**self.auth, **(extra or {})}


class Transport(Protocol):
    """Sends one request: (HTTP status, body bytes); OSError or HTTPException when nothing answers."""

    def send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]: ...

    def close(self) -> None: ...


class KeepAliveTransport:
    """One keep-alive connection to an endpoint, reopened (and the request sent again once) when
    the server closed it between requests."""

    def __init__(self, endpoint: Endpoint, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        """Send over the open connection; on a failure, once more over a new one."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self.endpoint.connection(self.timeout)
            try:
                self._conn.request(method, self.endpoint.base_path + path, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection (a new one opens on the next request)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


Handler = Callable[[str, str, Any, dict[str, str]], "tuple[int, Any]"]


class MockTransport:
    """Answers from ``handler(method, path, parsed_json_body, headers) -> (status, json_body)``,
    for tests of code above the wire; it records every request in :attr:`requests`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []  # method, path, body, headers

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        """Call the handler with the parsed body; encode its answer."""
        parsed = json.loads(body) if body else None
        self.requests.append((method, path, parsed, headers))
        status, answer = self.handler(method, path, parsed, headers)
        return status, b"" if answer is None else json.dumps(answer).encode()

    def close(self) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class Resource:
    """Where a kind is served: its group, version, plural name and scope."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str] = frozenset()  # what the server allows on it ("list", "delete", ...)

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The collection path (``name`` None) or one object's path."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        scope = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{scope}/{self.plural}" + (f"/{name}" if name else "")


class Api:
    """JSON requests to an API server over one transport, with a discovery cache."""

    def __init__(
        self, endpoint: Endpoint, transport: Transport | None = None, *, hint: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.transport: Transport = transport or KeepAliveTransport(endpoint)
        self.hint = hint  # what to tell a user when the server does not answer
        self._resources: dict[str, dict[str, Resource] | None] = {}

    @property
    def server(self) -> str:
        """The server's URL."""
        return self.endpoint.server

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> tuple[int, Any]:
        """Send one request: (HTTP status, parsed JSON body or None). ClusterError if nothing answers."""
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = self.endpoint.headers({"Accept": accept})
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            status, payload = self.transport.send(method, url, data, headers)
        except (OSError, http.client.HTTPException) as err:
            raise unreachable(self.server, err, self.hint) from err
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, None

    def close(self) -> None:
        """Close the transport's connection."""
        self.transport.close()

    def resources(self, api_version: str) -> dict[str, Resource] | None:
        """The kinds an apiVersion serves (None when the cluster does not serve it)."""
        if api_version not in self._resources:
            group, _, version = api_version.rpartition("/")
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            status, body = self.request("GET", path)
            self._resources[api_version] = (
                {
                    r["kind"]: Resource(
                        group,
                        version,
                        r["kind"],
                        r["name"],
                        bool(r.get("namespaced")),
                        frozenset(r.get("verbs") or ()),
                    )
                    for r in body.get("resources", [])
                    if "/" not in r["name"]
                }
                if status == 200 and isinstance(body, dict)
                else None
            )
        return self._resources[api_version]


def unreachable(server: str, err: Exception, hint: str | None = None) -> ClusterError:
    """The one error for a server that does not answer (refused, reset, timed out, bad TLS)."""
    return ClusterError(f"the API server at {server} does not answer: {err}", hint)


def expect_ok(status: int, body: Any, what: str, namespace: str | None = None) -> None:
    """Raise for an error answer about ``what``: UsageError when it does not exist (naming the
    namespace), ClusterError with the server's message for any other error."""
    if status == 404:
        where = f" in namespace {namespace}" if namespace else ""
        raise UsageError(f"{what} not found{where}", "lab.pods() / lab.nodes() list what exists")
    if status >= 400:
        message = body.get("message") if isinstance(body, dict) else None
        raise ClusterError(f"{what}: {message or f'HTTP {status}'}")
