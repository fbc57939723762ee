"""The pods-per-node widget: one box per node, one tile per pod, live, with buttons to act.

:class:`PodsPerNode` draws what :meth:`show` is given (plain models) and stops its feed (any
object with ``stop()``, e.g. :class:`~labkit.kube.watching.ClusterWatch`) when it is closed.
Its buttons call the actions it was given (the Lab's methods); the picture then shows the
result through the feed, as it would show any other change.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import ipywidgets as w

from labkit.kube.models import Nodes, Pods
from labkit.widgets import pods_html, pods_png
from labkit.widgets.node_layout import NodeLayout, layout

ACTIONS = ("delete pod", "stop node", "start node", "cordon", "uncordon", "scale")
Action = Callable[..., Any]


class Feed(Protocol):
    """What keeps a widget live: it is stopped when the widget closes."""

    def stop(self, timeout: float = 5.0) -> None: ...


class PodsPerNode(w.VBox):
    """Pods per node. ``.picture`` is the current layout, ``.counts`` the pods per node."""

    def __init__(
        self,
        nodes: Nodes,
        pods: Pods,
        *,
        namespace: str | None,
        selector: str | None = None,
        actions: Mapping[str, Action] | None = None,
    ) -> None:
        self.namespace, self.selector = namespace, selector
        self.actions = dict(actions or {})
        self.feed: Feed | None = None
        self.updates = 0  # how many pictures were drawn
        self._lock = threading.Lock()
        self.nodes, self.pods = nodes, pods
        self.picture: NodeLayout = layout(nodes, pods)
        self.view = w.HTML()
        self.message = w.HTML()
        self.pod_choice = w.Dropdown(description="pod", layout=w.Layout(width="260px"))
        self.node_choice = w.Dropdown(description="node", layout=w.Layout(width="260px"))
        self.owner_choice = w.Dropdown(description="deployment", layout=w.Layout(width="260px"))
        self.replicas = w.BoundedIntText(value=2, min=0, max=50, description="replicas",
                                         layout=w.Layout(width="160px"))  # fmt: skip
        self.buttons = {name: w.Button(description=name, layout=w.Layout(width="auto")) for name in ACTIONS}
        for name, button in self.buttons.items():
            button.on_click(lambda _b, name=name: self.act(name))
            button.disabled = name not in self.actions
        node_buttons = [self.buttons[n] for n in ("stop node", "start node", "cordon", "uncordon")]
        rows = [
            w.HBox([self.pod_choice, self.buttons["delete pod"]]),
            w.HBox([self.node_choice, *(b for b in node_buttons if not b.disabled)]),
            w.HBox([self.owner_choice, self.replicas, self.buttons["scale"]]),
        ]
        controls = [r for r in rows if any(isinstance(b, w.Button) and not b.disabled for b in r.children)]
        super().__init__([self.view, *controls, self.message])
        self.show(nodes, pods)

    # -- drawing ----------------------------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        """Pods per node name ("" for the pods on no node)."""
        return self.picture.counts

    def caption(self) -> str:
        """The line above the picture: where, and how many."""
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        if self.selector:
            where += f", pods matching {self.selector}"
        return f"pods per node · {where} · {len(self.pods)} pods on {len(self.nodes)} nodes"

    def show(self, nodes: Nodes, pods: Pods) -> None:
        """Draw these nodes and pods (the feed calls this after each change)."""
        with self._lock:
            self.nodes, self.pods = nodes, pods
            self.picture = layout(nodes, pods)
            html = pods_html.render(self.picture, self.caption())
            if html != self.view.value:
                self.view.value = html
            self.updates += 1
            self._choices()

    def _choices(self) -> None:
        _keep(self.pod_choice, [p.name for p in self.pods if p.state != "terminating"])
        _keep(self.node_choice, [n.name for n in self.nodes])
        owners = {p.owner or "" for p in self.pods}
        _keep(self.owner_choice, sorted(o.partition("/")[2] for o in owners if o.startswith("Deployment/")))

    def note(self, text: str) -> None:
        """Show a short message under the picture (what an action did, or why it failed)."""
        from html import escape

        self.message.value = f'<span class="labkit-message">{escape(text)}</span>' if text else ""

    # -- acting -----------------------------------------------------------------------------------

    def act(self, name: str) -> None:
        """Run one of the actions on what is chosen; a failure shows as a message, not a traceback."""
        action = self.actions.get(name)
        if action is None:
            return
        if name == "delete pod":
            target: tuple[Any, ...] = (self.pod_choice.value,)
        elif name == "scale":
            target = (self.owner_choice.value, self.replicas.value)
        else:
            target = (self.node_choice.value,)
        if target[0] is None:
            self.note(f"{name}: nothing to choose from")
            return
        self.note(f"{name} {' '.join(map(str, target))} ...")
        try:
            action(*target)
        except Exception as err:
            self.note(f"{name} {target[0]} failed: {getattr(err, 'message', None) or err}")
            return
        self.note(f"{name} {' '.join(map(str, target))}: done")

    # -- life -------------------------------------------------------------------------------------

    def attach(self, feed: Feed) -> None:
        """Keep ``feed`` until the widget closes, then stop it."""
        self.feed = feed

    def close(self) -> None:
        """Stop the feed (its threads end) and close the widget and its children."""
        if self.feed is not None:
            self.feed.stop()
            self.feed = None
        for child in [*self.children, *self.buttons.values()]:
            child.close()
        super().close()

    def __repr__(self) -> str:
        selector = f", selector={self.selector!r}" if self.selector else ""
        return f"PodsPerNode(namespace={self.namespace!r}{selector})"

    def png(self) -> bytes:
        """The current picture as PNG bytes (what nbviewer and GitHub show)."""
        return pods_png.png(self.picture, self.caption())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = dict(super()._repr_mimebundle_(**kwargs) or {})
        data["text/plain"] = repr(self)
        data["image/png"] = base64.b64encode(self.png()).decode()
        return data


def _keep(choice: w.Dropdown, options: list[str]) -> None:
    """Set a dropdown's options, keeping what was chosen while it is still there."""
    if list(choice.options) == options:
        return
    chosen = choice.value
    choice.options = options
    choice.value = chosen if chosen in options else (options[0] if options else None)
