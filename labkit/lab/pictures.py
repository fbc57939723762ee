"""The Lab's live pictures: it feeds the widgets plain models and its own methods as actions.

``lab.pods_per_node()`` and ``lab.request_distribution()`` come here. A widget made again by
the same cell (a re-run) replaces the one it made before: the old one is closed, so its watch
threads end. Outside a notebook cell, a new widget replaces the last one of its kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from labkit.errors import UsageError
from labkit.kube import listing
from labkit.kube.traffic import TrafficRun
from labkit.kube.watching import ClusterWatch

if TYPE_CHECKING:
    from labkit.clusters.base import ClusterBackend
    from labkit.kube.client import KubeClient
    from labkit.kube.http import Api
    from labkit.widgets.pods_per_node import PodsPerNode
    from labkit.widgets.request_distribution import RequestDistribution

EMBEDDED_CHOICES = ("random", "round-robin", "pinned", "keep-alive")
OTHER_CHOICES = ("as the cluster balances", "keep-alive")
_live: dict[tuple[str, str | None], Any] = {}  # (widget kind, cell id) -> the widget it made last


class LabView(Protocol):
    """What the wiring needs of :class:`labkit.lab.Lab` (a protocol: no import cycle)."""

    namespace: str
    target: str
    backend: ClusterBackend

    @property
    def api(self) -> Api: ...

    @property
    def kube(self) -> KubeClient: ...

    def cordon(self, node: str) -> None: ...

    def uncordon(self, node: str) -> None: ...

    def stop_node(self, name: str) -> None: ...

    def start_node(self, name: str) -> None: ...


def pods_per_node(lab: LabView, namespace: str | None = None, selector: str | None = None) -> PodsPerNode:
    """One box per node, a tile per pod of ``namespace`` (default: the Lab's), live from a watch."""
    from labkit.widgets.pods_per_node import PodsPerNode

    ns = namespace or lab.namespace
    actions: dict[str, Any] = {
        "delete pod": lambda pod: lab.api.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{pod}"),
        "cordon": lab.cordon,
        "uncordon": lab.uncordon,
        "scale": lambda deployment, replicas: _scale(lab, ns, deployment, replicas),
    }
    if lab.backend.supports_node_power():
        actions.update({"stop node": lab.stop_node, "start node": lab.start_node})
    widget = PodsPerNode(listing.nodes(lab.api, ns), listing.pods(lab.api, ns, selector), namespace=ns,
                         selector=selector, actions=actions)  # fmt: skip
    widget.attach(ClusterWatch(lab.kube, ns, widget.show, selector=selector, on_error=widget.note).start())
    _replace("pods_per_node", widget)
    return widget


def request_distribution(
    lab: LabView, service: str, n: int = 100, mode: str | None = None, via: str = "auto", wait: bool = False
) -> RequestDistribution:
    """Send ``n`` requests to ``service`` and draw a bar per replica while they go; ``mode`` picks
    the first run's balancing (see :data:`EMBEDDED_CHOICES`). ``wait`` returns once it is done."""
    from labkit.widgets.request_distribution import RequestDistribution

    choices = EMBEDDED_CHOICES if lab.backend.supports_node_power() else OTHER_CHOICES
    choice = mode or choices[0]
    if choice not in choices:
        hint = "choose one of: " + ", ".join(choices)
        raise UsageError(f"mode={mode!r} is not a choice on {lab.target}", hint)

    def start(picked: str) -> TrafficRun:
        balancing = picked if picked in ("random", "round-robin") else None
        route = "pinned" if picked == "pinned" else via
        return TrafficRun(lab.kube, service, namespace=lab.namespace, via=route, mode=balancing,
                          keep_alive=picked == "keep-alive")  # fmt: skip

    first = [start(choice)]  # a bad service, route or mode fails here, in the cell, not in the widget

    def start_once(picked: str) -> TrafficRun:
        return first.pop() if first and picked == choice else start(picked)

    widget = RequestDistribution(service, start_once, n=n, choices=choices, choice=choice)
    _replace("request_distribution", widget)
    widget.send()
    return widget.wait() if wait else widget


def _scale(lab: LabView, namespace: str, deployment: str, replicas: int) -> None:
    from labkit.kube import workloads

    workloads.scale(lab.api, namespace, deployment, replicas)


def _replace(kind: str, widget: Any) -> None:
    key = (kind, _cell_id())
    old = _live.pop(key, None)
    if old is not None and old is not widget:
        old.close()
    _live[key] = widget


def _cell_id() -> str | None:
    """The id of the notebook cell running now (JupyterLab and nbclient send it), else None."""
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:  # no IPython, or a kernel that keeps no parent message
        return None
    metadata = (parent or {}).get("metadata") or {}
    return metadata.get("cellId")


def close_all() -> None:
    """Close every live widget (their threads end): the kernel does this when its Lab is replaced."""
    while _live:
        _, widget = _live.popitem()
        widget.close()
