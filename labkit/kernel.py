"""One Lab per kernel: ``labkit.connect()`` and the magics share it.

A learner mixes ``lab = labkit.connect()`` with ``%%k8s`` and ``%lab``; both must see the same
target, namespace and record of what the notebook made, so a ``%lab reset`` deletes what either
made. :func:`connect` keeps that Lab while the target is the same cluster, and makes a new one
(which the magics then use too) when another target is asked for.
"""

from __future__ import annotations

from labkit.clusters.detect import detect
from labkit.lab import Lab
from labkit.lab.pictures import close_all

_kernel_lab: Lab | None = None  # the one Lab of this kernel: connect() and the magics share it


def connect(target: str = "auto", context: str | None = None, namespace: str | None = None) -> Lab:
    """The kernel's Lab on ``target``: "embedded" (started if it is not running), "kind" (created
    with 3 nodes if absent), "kubeconfig" (``context``, else the current one), or "auto": the
    configured target (``%config Lab.target``, else ``$LABKIT_TARGET``), else embedded.

    In one kernel this returns the same Lab the magics use (its namespace, and its record of what
    the notebook made) while the target is the same cluster; another target makes a new Lab,
    which the magics then use too. ``namespace`` switches to a namespace without creating it."""
    global _kernel_lab
    backend = detect(target, context)
    current = _kernel_lab
    if current is not None and (backend.name, backend.describe()) == (
        current.backend.name,
        current.backend.describe(),
    ):
        current.backend.ensure_running()  # it may have been stopped since
    else:
        close_all()  # the widgets of the Lab being replaced watch its cluster: they stop
        current = _kernel_lab = Lab(backend, namespace)
    if namespace:
        current.namespace = namespace
    return current


def current() -> Lab | None:
    """The kernel's Lab, if one is connected."""
    return _kernel_lab


def disconnect() -> None:
    """Forget the kernel's Lab: the next ``connect()`` or magic makes a new one (with an empty
    record; a reset still finds what the notebook made, by its labels)."""
    global _kernel_lab
    close_all()
    _kernel_lab = None


__all__ = ["connect", "current", "disconnect"]
