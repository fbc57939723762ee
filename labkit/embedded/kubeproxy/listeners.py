"""The cluster's kube-proxy: a loopback TCP listener for every way into a Service.

For each Service port it listens on ``<clusterIP>:<port>``; NodePort and LoadBalancer Services
also on ``127.0.0.1:<nodePort>`` and on every node's InternalIP, LoadBalancers on
``<ingress IP>:<port>`` too. Headless Services get none. Each accepted connection gets ONE
endpoint from the :class:`~labkit.embedded.kubeproxy.ServiceRouter` (as kube-proxy picks per
connection) and its bytes are piped both ways to the endpoint's real address. A connection
that finds no ready endpoint, or whose endpoint refuses, is reset at once, as a client of a
real cluster sees it refused. A listener that cannot be opened (a port held by another
process, a privileged port) is a Warning event on the Service, and is tried again.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.base import Controller, Key
from labkit.embedded.kubeproxy.records import CONNECT_FAILED, Record
from labkit.embedded.kubeproxy.router import ServiceRouter
from labkit.embedded.kubeproxy.table import ServiceView
from labkit.shared.podports import real_port

COMPONENT = "kube-proxy"
NODE_HOST = "127.0.0.1"
API_SERVICE = ("default", "kubernetes")  # its listener leads to the API server, when it can be opened

log = logging.getLogger("labkit.proxy")


@dataclass(frozen=True)
class Binding:
    """One address to listen on for one Service port."""

    host: str
    port: int
    port_name: str
    via: str  # "clusterip", "nodeport" or "loadbalancer"
    optional: bool = False  # tried, but no event when it cannot be opened


def _cluster_bindings(host: str, port: int, name: str, via: str) -> list[Binding]:
    """A Service port on a cluster address: pods reach a privileged one ``PRIVILEGED_OFFSET``
    higher (their network shim translates it), so it is served there; the port itself is
    served too where this process may open it (as root), for clients on the host."""
    real = real_port(port)
    if real == port:
        return [Binding(host, port, name, via)]
    return [Binding(host, real, name, via), Binding(host, port, name, via, optional=True)]


@dataclass
class Timeouts:
    """Bounds on a proxied connection, in seconds."""

    connect: float = 3.0  # to reach the endpoint
    idle: float = 300.0  # with no byte either way
    half_open: float = 60.0  # after one side has finished sending


def bindings(view: ServiceView, node_ips: list[str]) -> list[Binding]:
    """Every address the Service should be reachable on."""
    wanted: list[Binding] = []
    for port in view.ports:
        if port.protocol != "TCP":
            continue
        if view.cluster_ip:
            wanted.extend(_cluster_bindings(view.cluster_ip, port.port, port.name, "clusterip"))
        if port.node_port and view.type in ("NodePort", "LoadBalancer"):
            for host in dict.fromkeys([NODE_HOST, *node_ips]):
                wanted.append(Binding(host, port.node_port, port.name, "nodeport"))
        if view.type == "LoadBalancer":
            for ip in view.ingress_ips:
                wanted.extend(_cluster_bindings(ip, port.port, port.name, "loadbalancer"))
    return wanted


def reset(transport: asyncio.Transport) -> None:
    """Close a connection with a TCP reset (what a refused or dropped connection looks like)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class ServiceListeners(Controller):
    """Opens and closes the Service listeners as Services change; runs their connections."""

    name = COMPONENT
    watches = ("core/services",)
    retry_seconds = 5.0  # a listener that could not be opened is tried again this often

    def __init__(self, ctx: ClusterContext, router: ServiceRouter, timeouts: Timeouts | None = None) -> None:
        super().__init__(ctx)
        self.router = router
        self.timeouts = timeouts or Timeouts()
        self.servers: dict[tuple[str, int], tuple[Key, Binding, asyncio.Server]] = {}
        self.connections: set[Connection] = set()
        self._warned: dict[Key, set[tuple[str, str]]] = {}

    # -- listeners -----------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        """Listen where the Service should be reachable and nowhere else."""
        view = self.router.view(*key)
        wanted = {(b.host, b.port): b for b in bindings(view, self._node_ips())} if view else {}
        for address, (owner, binding, server) in list(self.servers.items()):
            if owner == key and wanted.get(address) != binding:
                server.close()
                del self.servers[address]
        failures = await self._open(key, wanted)
        if view is None:
            self._warned.pop(key, None)
            return None
        if key == API_SERVICE:  # best effort: another cluster on this host, or no root for 443
            for failure in failures:
                log.info("Service default/kubernetes: %s", failure.split(";")[0])
            return None
        problems = [("InvalidAnnotation", p) for p in view.problems]
        self._warn(key, [*problems, *(("FailedToListen", f) for f in failures)])
        return self.retry_seconds if failures else None

    async def _open(self, key: Key, wanted: dict[tuple[str, int], Binding]) -> list[str]:
        """Open the missing listeners; what could not be opened, and why."""
        failures = []
        for address, binding in wanted.items():
            if address in self.servers:
                continue
            try:
                await self._listen(key, binding)
            except OSError as e:
                if not binding.optional:
                    failures.append(_listen_failure(binding, e, self.retry_seconds))
        return failures

    async def _listen(self, key: Key, binding: Binding) -> None:
        owner = self.servers.get((binding.host, binding.port))
        if owner is not None:  # another Service held it until a moment ago; it lets go on reconcile
            raise OSError(errno.EADDRINUSE, f"in use by Service {owner[0][0]}/{owner[0][1]}")
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: ClientSide(self, key, binding),
            binding.host,
            binding.port,
            reuse_address=True,
            backlog=1024,
        )
        self.servers[(binding.host, binding.port)] = (key, binding, server)

    def _node_ips(self) -> list[str]:
        nodes, _ = self.ctx.store.list("core/nodes")
        return [
            a["address"]
            for node in nodes
            for a in (node.get("status") or {}).get("addresses") or []
            if a.get("type") == "InternalIP" and a.get("address", "").startswith("127.")
        ]

    def _warn(self, key: Key, problems: list[tuple[str, str]]) -> None:
        """A Warning event for each new (reason, message) of the Service: once, not on every retry."""
        seen = self._warned.get(key, set())
        svc = self.ctx.store.find("core/services", *key)
        for reason, message in problems:
            if (reason, message) not in seen and svc is not None:
                self.ctx.event(svc, COMPONENT, "Warning", reason, message)
        self._warned[key] = set(problems)

    async def stop(self) -> None:
        """Stop listening and drop every open connection."""
        await super().stop()
        for _, _, server in self.servers.values():
            server.close()
        for connection in list(self.connections):
            connection.abort()
        for _, _, server in self.servers.values():
            await server.wait_closed()
        self.servers.clear()


def _listen_failure(binding: Binding, error: OSError, retry: float) -> str:
    where = f"{binding.host}:{binding.port}"
    what = f'port "{binding.port_name}"' if binding.port_name else "the service port"
    if binding.via == "nodeport":
        what = f"the nodePort of {what}"
    if error.errno == errno.EADDRINUSE:
        cause = f"the address is already in use ({error.strerror or 'by another process'})"
    elif error.errno == errno.EACCES:
        cause = (
            "permission denied: ports below 1024 need root (or a lower net.ipv4.ip_unprivileged_port_start)"
        )
    else:
        cause = error.strerror or str(error)
    return f"cannot listen on {where} for {what}: {cause}; retrying every {retry:g}s"


# -- connections -------------------------------------------------------------------------------


class Connection:
    """One client connection piped to one endpoint, with its record and idle timer."""

    def __init__(self, proxy: ServiceListeners, client: asyncio.Transport, record: Record) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.record = record
        self.client_done = False  # the client finished sending
        self.upstream_done = False
        self.client_closed = False
        self.upstream_closed = False
        self.connecting: asyncio.Task[None] | None = None
        self.early = bytearray()  # client bytes that came before the endpoint answered
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()
        self.timer = self.loop.call_later(proxy.timeouts.idle, self._check_idle)
        proxy.connections.add(self)

    async def connect(self, address: tuple[str, int]) -> None:
        """Reach the endpoint, then let the client's bytes flow."""
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: UpstreamSide(self), *address), self.proxy.timeouts.connect
            )
        except (OSError, asyncio.TimeoutError) as e:
            log.debug("connecting to %s:%d failed: %s", *address, e)
            self.record.outcome = CONNECT_FAILED
            if not self.client_closed:
                reset(self.client)
            return
        assert self.upstream is not None
        if self.client_closed:
            self.upstream.abort()
            return
        if self.early:
            self.upstream.write(bytes(self.early))
            self.early.clear()
        if self.client_done and self.upstream.can_write_eof():
            self.upstream.write_eof()
        self.client.resume_reading()

    # -- data, end of data, closing ----------------------------------------------------------

    def from_client(self, data: bytes) -> None:
        """Bytes from the client."""
        self.last = self.loop.time()
        self.record.bytes_in += len(data)
        if self.upstream is None:
            # some Pythons (Debian's 3.11.2) read a socket paused in connection_made once:
            # keep the bytes for the endpoint and stop reading until it answers
            self.early += data
            self.client.pause_reading()
            return
        self.upstream.write(data)

    def from_upstream(self, data: bytes) -> None:
        """Bytes from the endpoint."""
        self.last = self.loop.time()
        self.record.bytes_out += len(data)
        self.client.write(data)

    def client_eof(self) -> None:
        """The client finished sending: pass the end on (a half-close)."""
        self.client_done = True
        if self.upstream is not None and self.upstream.can_write_eof():
            self.upstream.write_eof()
        self._end_if_both_done()

    def upstream_eof(self) -> None:
        """The endpoint finished sending."""
        self.upstream_done = True
        if self.client.can_write_eof():
            self.client.write_eof()
        self._end_if_both_done()

    def _end_if_both_done(self) -> None:
        if self.client_done and self.upstream_done:
            self.client.close()
            if self.upstream is not None:
                self.upstream.close()

    def client_lost(self, error: Exception | None) -> None:
        """The client's socket closed; close the endpoint's (abruptly if the client's was)."""
        self.client_closed = True
        if self.connecting is not None and not self.connecting.done():
            self.connecting.cancel()
        if self.upstream is not None and not self.upstream_closed:
            if error is None:
                self.upstream.close()
            else:
                self.upstream.abort()
        self._finish_if_closed()

    def upstream_lost(self, error: Exception | None) -> None:
        """The endpoint's socket closed: deliver what it sent, then close the client's."""
        self.upstream_closed = True
        if not self.client_closed:
            if error is None:
                self.client.close()
            else:
                reset(self.client)
        self._finish_if_closed()

    def _finish_if_closed(self) -> None:
        if self.client_closed and (self.upstream is None or self.upstream_closed):
            self.timer.cancel()
            self.proxy.connections.discard(self)
            self.record.finish()

    def abort(self) -> None:
        """Drop both sides now."""
        self.client.abort()
        if self.upstream is not None:
            self.upstream.abort()
        if self.connecting is not None:
            self.connecting.cancel()

    def _check_idle(self) -> None:
        limit = (
            self.proxy.timeouts.half_open
            if self.client_done or self.upstream_done
            else self.proxy.timeouts.idle
        )
        left = self.last + limit - self.loop.time()
        if left > 0:
            self.timer = self.loop.call_later(left, self._check_idle)
            return
        log.debug("closing %s after %.0fs without traffic", self.record.client, limit)
        self.abort()


class ClientSide(asyncio.Protocol):
    """The accepted socket of a Service listener."""

    def __init__(self, proxy: ServiceListeners, key: Key, binding: Binding) -> None:
        self.proxy = proxy
        self.key = key
        self.binding = binding
        self.connection: Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Pick the endpoint; reset at once when there is none."""
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        peer: Any = transport.get_extra_info("peername") or ("", 0)
        try:
            route = self.proxy.router.route(*self.key, self.binding.port_name, client_ip=peer[0])
        except ApiError:  # the Service went away a moment ago
            reset(transport)
            return
        record = self.proxy.router.record(route, f"{peer[0]}:{peer[1]}", self.binding.via)
        if route.endpoint is None:
            record.finish()
            reset(transport)
            return
        connection = self.connection = Connection(self.proxy, transport, record)
        connection.connecting = connection.loop.create_task(connection.connect(route.endpoint.address))

    def data_received(self, data: bytes) -> None:
        """Forward to the endpoint."""
        assert self.connection is not None
        self.connection.from_client(data)

    def eof_received(self) -> bool:
        """Half-close towards the endpoint; keep our sending side open."""
        if self.connection is not None:
            self.connection.client_eof()
        return True

    def pause_writing(self) -> None:
        """The client reads slowly: stop reading from the endpoint."""
        if self.connection is not None and self.connection.upstream is not None:
            self.connection.upstream.pause_reading()

    def resume_writing(self) -> None:
        """The client caught up."""
        if self.connection is not None and self.connection.upstream is not None:
            self.connection.upstream.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """The client's socket is closed."""
        if self.connection is not None:
            self.connection.client_lost(exc)


class UpstreamSide(asyncio.Protocol):
    """The socket to the endpoint."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Connected: the connection may use it."""
        assert isinstance(transport, asyncio.Transport)
        self.connection.upstream = transport

    def data_received(self, data: bytes) -> None:
        """Forward to the client."""
        self.connection.from_upstream(data)

    def eof_received(self) -> bool:
        """Half-close towards the client."""
        self.connection.upstream_eof()
        return True

    def pause_writing(self) -> None:
        """The endpoint reads slowly: stop reading from the client."""
        self.connection.client.pause_reading()

    def resume_writing(self) -> None:
        """The endpoint caught up."""
        self.connection.client.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """The endpoint's socket is closed."""
        self.connection.upstream_lost(exc)
