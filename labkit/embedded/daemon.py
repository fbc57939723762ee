"""The cluster daemon: one process per cluster, serving the API on 127.0.0.1.

Run by ``labkit cluster up`` as ``python -m labkit.embedded.daemon --name NAME``. It
opens the store, brings the system objects and nodes up to date, listens (on the port
it had before when that port is free, so kubeconfigs stay valid), writes the kubeconfig
and pid file, and reports readiness on ``--ready-fd``. It serves HTTPS with the cluster's own CA
(see :mod:`labkit.embedded.certs`). SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import random
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from labkit.embedded import addresses
from labkit.embedded.apiserver import validation
from labkit.embedded.apiserver.app import build_app
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.bootstrap import NODES, bootstrap
from labkit.embedded.certs import ensure_certs
from labkit.embedded.context import ClusterContext
from labkit.embedded.forward_proxy import HttpProxy
from labkit.embedded.imagesource import DiskImageSource, LayeredImages
from labkit.embedded.kubelet.session import NodeStreams
from labkit.embedded.manager import ClusterManager
from labkit.embedded.podlogs import PodLogs
from labkit.embedded.runnable_images import builtin_images
from labkit.embedded.state import ClusterDir
from labkit.embedded.store import Store
from labkit.shared.imagestore import DiskImages

log = logging.getLogger("labkit.daemon")


async def _listen(runner: web.AppRunner, port: int, tls: ssl.SSLContext) -> int:
    """Listen on 127.0.0.1:port, or on a free port if that one is taken; return the port."""
    for candidate in [port, 0] if port else [0]:
        site = web.TCPSite(runner, "127.0.0.1", candidate, reuse_address=False, ssl_context=tls)
        try:
            await site.start()
        except OSError as e:
            if e.errno != errno.EADDRINUSE or candidate == 0:
                raise
            log.warning("port %d is taken; choosing another", candidate)
            continue
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    raise OSError("no port to listen on")


async def serve(cluster: ClusterDir, ready_fd: int | None = None) -> None:
    """Run the cluster until SIGTERM or SIGINT."""
    config = cluster.load()
    _make_private(cluster)
    store = Store(cluster.db)
    registry = Registry(store)
    registry.toleration_seconds = config.eviction_delay
    if config.addresses is None and store.list(NODES.key)[0]:
        config.addresses = 0  # made before address blocks: its objects carry block 0's addresses
    block, holder = addresses.claim(config.addresses)  # held while the cluster runs
    addresses.use(block)
    config.addresses = block.index
    bootstrap(registry, cluster.name, config.nodes)
    ctx = ClusterContext(registry, config, cluster, random.Random(config.seed))
    home = cluster.path.parents[1]
    images = LayeredImages(DiskImageSource(DiskImages(home)), builtin_images(home / "cache" / "stock"))
    manager = ClusterManager(ctx, images)
    http_proxy = HttpProxy(store, manager.router)  # how pods call Services by name
    await http_proxy.start()
    for kubelet in manager.kubelets.values():
        kubelet.http_proxy = http_proxy.url_for
    app = build_app(
        registry,
        cluster.token(),
        logs=PodLogs(cluster.pods_dir),
        router=manager.router,
        streams=NodeStreams(manager.kubelets),
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    _, cert, key = ensure_certs(cluster.path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    port = await _listen(runner, config.port, tls)
    config.port = port
    cluster.save(config)
    cluster.write_kubeconfig(port)
    cluster.pid_file.write_text(f"{os.getpid()}\n")
    _make_private(cluster)
    await manager.start()
    log.info("cluster %s serving on https://127.0.0.1:%d with %d nodes", cluster.name, port, config.nodes)
    if ready_fd is not None:
        os.write(ready_fd, f"ready {port}\n".encode())
        os.close(ready_fd)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, validation.warm_up)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await manager.shutdown()
        await http_proxy.close()
        store.end_watches()
        await runner.cleanup()
        store.close()
        holder.close()
        if cluster.pid() == os.getpid():
            cluster.pid_file.unlink(missing_ok=True)


def _make_private(cluster: ClusterDir) -> None:
    """Check the state directory at start: fix what can be fixed, warn about the rest."""
    for warning in cluster.make_private():
        log.warning("%s", warning)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the daemon process."""
    parser = argparse.ArgumentParser(
        prog="python -m labkit.embedded.daemon",
        description="Run a labkit embedded cluster in the foreground.",
    )
    parser.add_argument("--name", default="labkit", help="cluster name (default: labkit)")
    parser.add_argument(
        "--home", type=Path, default=None, help="state home (default: $LABKIT_HOME or ~/.labkit)"
    )
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    cluster = ClusterDir(args.name, args.home)
    cluster.path.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(cluster, args.ready_fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
