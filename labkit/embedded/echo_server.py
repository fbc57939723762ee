"""The ``labkit/echo`` image: a small HTTP server that says which pod answered.

Standard library only, run as a script by the process runtime. It listens on ``$PORT``
(default 8080) on every address and answers any path with JSON: the pod (``$HOSTNAME``), the
node (``$NODE_NAME``, e.g. from the downward API), the pod IP (``$POD_IP``), how many requests
it has served, the path and the version (``$VERSION``, which the image sets from its tag).

``/healthz`` and ``/readyz`` answer 200, or 500 and 503 once disabled, so probes can be
demonstrated: ``POST /healthz/disable`` (``/enable``), ``POST /readyz/disable`` (``/enable``),
or create the file named by ``$UNREADY_FILE`` (default ``unready`` in the working directory).
Each request is logged as one line on stdout. SIGTERM stops it after the requests in flight, with exit code 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo:
    """The server's state: the request count and the health switches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.healthy = True
        self.ready = True

    def serve(self, path: str) -> dict[str, object]:
        """Count a request and describe who answered it."""
        with self.lock:
            self.count += 1
            count = self.count
        return {
            "pod": os.environ.get("HOSTNAME", ""),
            "node": os.environ.get("NODE_NAME") or os.environ.get("LABKIT_NODE") or None,
            "ip": os.environ.get("POD_IP", ""),
            "count": count,
            "path": path,
            "version": os.environ.get("VERSION", "unknown"),
        }

    def is_ready(self) -> bool:
        """Ready unless switched off or the unready file exists."""
        return self.ready and not os.path.exists(os.environ.get("UNREADY_FILE", "unready"))


STATE = Echo()
SWITCHES = {
    "/healthz/disable": ("healthy", False),
    "/healthz/enable": ("healthy", True),
    "/readyz/disable": ("ready", False),
    "/readyz/enable": ("ready", True),
}


class Handler(BaseHTTPRequestHandler):
    """Answers every request; logs one line per request."""

    server_version = "labkit-echo/1"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once on keep-alive connections
    timeout = 5  # an idle keep-alive connection is closed, so a stopping server does not wait on it

    def do_GET(self) -> None:
        """Health, readiness, or the echo answer."""
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            ok = STATE.healthy
            self._reply(200 if ok else 500, {"status": "ok" if ok else "unhealthy"})
        elif path == "/readyz":
            ok = STATE.is_ready()
            self._reply(200 if ok else 503, {"status": "ready" if ok else "not ready"})
        else:
            self._reply(200, STATE.serve(path))

    def do_POST(self) -> None:
        """Flip a health switch, or answer like GET."""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        if path in SWITCHES:
            attribute, value = SWITCHES[path]
            setattr(STATE, attribute, value)
            self._reply(200, {attribute: value})
        else:
            self._reply(200, STATE.serve(path))

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """One line per request on stdout."""
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


class Server(ThreadingHTTPServer):
    """A threading HTTP server with a listen backlog that survives bursts of connections."""

    request_queue_size = 128  # socketserver's default of 5 drops connects when 32 clients arrive


def main() -> int:
    """Serve until SIGTERM."""
    port = int(os.environ.get("PORT") or 8080)
    try:
        server = Server(("0.0.0.0", port), Handler)
    except OSError as e:
        print(f"echo: cannot listen on 0.0.0.0:{port}: {e}", file=sys.stderr, flush=True)
        return 1
    server.daemon_threads = False
    server.block_on_close = True  # on SIGTERM, requests in flight are answered before exiting
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"echo: listening on 0.0.0.0:{port} (version {os.environ.get('VERSION', 'unknown')})", flush=True)
    server.serve_forever()
    server.server_close()
    print("echo: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
