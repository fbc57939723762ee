"""The spec of a container's next run: its environment, command, volumes and view, worked out.

:func:`configure` turns the container's definition and its image into a
:class:`~labkit.embedded.kubelet.runtime.ContainerSpec`: in the pod's network (its ``/etc``
files, the network shim's variables), and with isolation in a view of its own image with its
volumes and its termination message file mounted. While something it needs is missing (a
ConfigMap, a Secret, the isolation tools) the container waits in CreateContainerConfigError or
CreateContainerError.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from labkit.embedded.kubelet.env import ConfigError, Environment
from labkit.embedded.kubelet.filesystem import container_view, inside_command, inside_env, shim_env
from labkit.embedded.kubelet.network import first_port
from labkit.embedded.kubelet.runtime import ContainerSpec
from labkit.embedded.kubelet.termination_log import TERMINATION_LOG, termination_log
from labkit.embedded.podlogs import container_id
from labkit.embedded.runnable_images import Image
from labkit.sandbox.view import Mount

if TYPE_CHECKING:
    from labkit.embedded.kubelet.containerhost import ContainerHost


async def configure(runner: ContainerHost, image: Image) -> ContainerSpec | None:
    """The spec of the next run; waits in CreateContainerConfigError while something it
    needs is missing. None if the pod goes away first."""
    worker = runner.worker
    while not worker.terminating.is_set():
        port = worker.port_for(runner.name, first_port(runner.spec, image))
        kubelet = worker.kubelet
        # pods find Services by name through their /etc/hosts; the HTTP proxy is for
        # processes that run without isolation (LABKIT_ISOLATION=none)
        isolated = not isinstance(kubelet.sandbox(), Exception) and kubelet.sandbox().isolated
        proxy = kubelet.http_proxy(worker.namespace) if kubelet.http_proxy and not isolated else None
        environment = Environment(
            kubelet.ctx.store, worker.pod, kubelet.node, worker.ip, kubelet.host_ip, proxy
        )
        try:
            env, argv = environment.build(runner.spec, image, port)
            volumes = worker.volumes.mounts(runner.spec)
        except ConfigError as e:
            runner.record.waiting("CreateContainerConfigError", str(e))
            runner.event("Warning", "Failed", f"Error: {e}")
            worker.attempted(runner)
            worker.publish()
            await runner.sleep(worker.kubelet.ctx.config.backoff_base)
            continue
        base = worker.directory / runner.name
        workdir = str(runner.spec.get("workingDir") or image.config.working_dir or "/")
        run = runner.next_run
        sandbox = kubelet.sandbox()
        if isinstance(sandbox, Exception):
            message = f"no container isolation: {sandbox}"
            runner.record.waiting("CreateContainerError", message)
            runner.event("Warning", "Failed", f"Error: {message}")
            worker.attempted(runner)
            worker.publish()
            await runner.sleep(worker.kubelet.ctx.config.backoff_base)
            continue
        view = None
        if sandbox.isolated:
            hostname = environment.hostname()
            worker.files.write(worker.namespace, hostname, sandbox.shim)
            kubelet.names.register(worker.files.hosts, worker.namespace, worker.ip, hostname)
            runner.termination_log = termination_log(base, run)
            inside = str(runner.spec.get("terminationMessagePath") or TERMINATION_LOG)
            volumes = [*volumes, Mount(runner.termination_log, inside, writable=True)]
            view = container_view(
                sandbox.isolation, image, base, worker.files, workdir, hostname, sandbox.shim, volumes
            )
            marks = shim_env(worker.ip, hostname, kubelet.node, str(kubelet.ctx.state.path))
            env = {**inside_env(env, image), **marks}
            env.setdefault("HOME", "/root")
            argv = inside_command(image, argv)
            working_dir = view.root / view.cwd.lstrip("/")
        else:
            # LABKIT_ISOLATION=none: the host's files, but the pod's own network all the
            # same (the shim, preloaded by variable: no /etc/ld.so.preload of its own)
            root = image.root if image.root is not None else base / "fs"
            working_dir = root / workdir.lstrip("/")
            env.setdefault("HOME", str(root))
            if sandbox.shim is not None:
                worker.files.write(worker.namespace, environment.hostname(), None)
                marks = shim_env(
                    worker.ip,
                    environment.hostname(),
                    kubelet.node,
                    str(kubelet.ctx.state.path),
                    report=str(worker.files.report),
                )
                env = {**env, **marks, "LD_PRELOAD": str(sandbox.shim)}
        return ContainerSpec(
            id=container_id(worker.uid, runner.name, run),
            namespace=worker.namespace,
            pod=worker.name,
            pod_uid=worker.uid,
            name=runner.name,
            image=image,
            argv=argv,
            env=env,
            working_dir=Path(working_dir),
            log=base / f"{run}.log",
            view=view,
            stdin=bool(runner.spec.get("stdin")),
            stdin_once=bool(runner.spec.get("stdinOnce")),
            tty=bool(runner.spec.get("tty")),
        )
    return None
