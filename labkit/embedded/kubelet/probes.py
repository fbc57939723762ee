"""Running one probe (httpGet, tcpSocket, exec) and wording its failure as kubelet does.

Probes name the pod IP and the declared port in their messages, as on a real cluster, but
connect where the process really listens: a port that a container's ``PORT`` stands for goes
to that real port on loopback.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from labkit.embedded.kubelet.network import real_port
from labkit.embedded.kubelet.runtime import StartError

USER_AGENT = "kube-probe/1.32"
Exec = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True)
class Target:
    """Where a container's probes go: the pod IP and the container's declared ports."""

    pod_ip: str
    container: dict[str, Any]

    def port(self, port: int | str) -> int | None:
        """The declared port number of ``port`` (a number or one of the container's port names)."""
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in self.container.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        return None

    def connect(self, host: str, port: int) -> tuple[str, int]:
        """The address to connect to for ``host:port`` as the probe names it."""
        return (host or self.pod_ip), real_port(port)


async def check(probe: dict[str, Any], target: Target, run: Exec) -> tuple[bool, str]:
    """Run ``probe`` once: (success, failure message)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if "httpGet" in probe:
        return await _http(probe["httpGet"], target, timeout)
    if "tcpSocket" in probe:
        return await _tcp(probe["tcpSocket"], target, timeout)
    if "exec" in probe:
        return await _exec(probe["exec"].get("command") or [], run, timeout)
    return True, ""  # grpc probes are not run: they count as passing


def _named(action: dict[str, Any], target: Target) -> tuple[str, int] | str:
    port = target.port(action.get("port", ""))
    if port is None:
        return f"unable to find port {action.get('port')!r} in container {target.container.get('name')}"
    return str(action.get("host") or target.pod_ip), port


async def _http(action: dict[str, Any], target: Target, timeout: float) -> tuple[bool, str]:
    named = _named(action, target)
    if isinstance(named, str):
        return False, named
    host, port = named
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{port}{path}"
    connect_host, connect_port = target.connect(str(action.get("host") or ""), port)
    tls = None
    if scheme == "https":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    headers = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        headers[str(header.get("name"))] = str(header.get("value", ""))
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request += "Connection: close\r\n\r\n"
    try:
        status = await asyncio.wait_for(_get(connect_host, connect_port, tls, request.encode()), timeout)
    except asyncio.TimeoutError:
        return (
            False,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
        )
    except ConnectionRefusedError:
        return False, f'Get "{url}": dial tcp {host}:{port}: connect: connection refused'
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
        return False, f'Get "{url}": {e or "EOF"}'
    if 200 <= status < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {status}"


async def _get(host: str, port: int, tls: ssl.SSLContext | None, request: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        writer.write(request)
        await writer.drain()
        line = await reader.readline()
        parts = line.decode("latin-1").split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError("malformed HTTP response")
        return int(parts[1])
    finally:
        writer.close()


async def _tcp(action: dict[str, Any], target: Target, timeout: float) -> tuple[bool, str]:
    named = _named(action, target)
    if isinstance(named, str):
        return False, named
    host, port = named
    connect_host, connect_port = target.connect(str(action.get("host") or ""), port)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(connect_host, connect_port), timeout)
    except asyncio.TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except ConnectionRefusedError:
        return False, f"dial tcp {host}:{port}: connect: connection refused"
    except OSError as e:
        return False, f"dial tcp {host}:{port}: {e}"
    writer.close()
    return True, ""


async def _exec(command: list[str], run: Exec, timeout: float) -> tuple[bool, str]:
    try:
        code, output = await run([str(c) for c in command], timeout)
    except TimeoutError:
        return False, f"command {' '.join(command)!r} timed out"
    except StartError as e:
        return False, f"OCI runtime exec failed: exec failed: unable to start container process: {e}: unknown"
    if code == 0:
        return True, ""
    text = output.decode(errors="replace").strip()
    return False, text or f"command {' '.join(command)!r} exited with {code}"
