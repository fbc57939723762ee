"""The pods-per-node picture as HTML: node boxes with pod tiles, in plain HTML and CSS.

No script and no frontend build: the same markup shows in JupyterLab, Notebook 7 and Voilà.
Every element carries ``data-`` attributes (node, condition, pod, state, owner), which the
browser test reads.
"""

from __future__ import annotations

from html import escape

from labkit.kube.models import PodInfo
from labkit.widgets.node_layout import NodeBox, NodeLayout
from labkit.widgets.palette import (
    NODE_COLOURS,
    NODE_WORDS,
    STATE_COLOURS,
    STATE_WORDS,
    owner_badge,
    owner_colour,
)

STYLE = """<style>
.labkit-ppn{font-family:system-ui,sans-serif;font-size:12px}
.labkit-ppn .nodes{display:flex;flex-wrap:wrap;gap:8px}
.labkit-node{border:3px solid;border-radius:6px;padding:6px;min-width:210px;max-width:300px}
.labkit-node .head{margin-bottom:4px}
.labkit-node .name{font-weight:600}
.labkit-node .meta{color:#555}
.labkit-tiles{display:flex;flex-wrap:wrap;gap:3px;min-height:26px}
.labkit-pod{width:44px;height:22px;border:3px solid;border-radius:4px;color:#fff;font-size:10px;
 overflow:hidden;white-space:nowrap;text-overflow:ellipsis;text-align:center;line-height:22px;cursor:default}
.labkit-unscheduled{margin-top:8px;border:2px dashed #9aa5b1;border-radius:6px;padding:6px}
.labkit-legend{margin-top:6px;color:#555}
.labkit-legend span.swatch{display:inline-block;width:10px;height:10px;margin:0 3px 0 8px;border-radius:2px}
</style>"""


def tile(pod: PodInfo) -> str:
    """One pod's tile: its state's colour, its owner's border and badge, details on hover."""
    details = "\n".join(
        [pod.name, f"{STATE_WORDS[pod.state]} ({pod.status})", f"ready {pod.ready}",
         f"restarts {pod.restarts}", f"IP {pod.ip or '-'}", f"owner {pod.owner or '-'}"]
    )  # fmt: skip
    style = f"background:{STATE_COLOURS[pod.state]};border-color:{owner_colour(pod.owner)}"
    return (
        f'<div class="labkit-pod" data-pod="{escape(pod.name)}" data-state="{pod.state}" '
        f'data-owner="{escape(pod.owner or "")}" title="{escape(details)}" style="{style}">'
        f"{escape(owner_badge(pod.owner))}</div>"
    )


def node_box(box: NodeBox) -> str:
    """One node: name, role, condition and pods against capacity, then its tiles."""
    count = f"{len(box.pods)}/{box.capacity} pods" if box.capacity else f"{len(box.pods)} pods"
    tiles = "".join(tile(p) for p in box.pods)
    return (
        f'<div class="labkit-node" data-node="{escape(box.name)}" data-condition="{box.condition}" '
        f'data-pods="{len(box.pods)}" style="border-color:{NODE_COLOURS[box.condition]}">'
        f'<div class="head"><span class="name">{escape(box.name)}</span> '
        f'<span class="meta">{box.role} · <b class="condition">{NODE_WORDS[box.condition]}</b> · '
        f"{count}</span>"
        f'</div><div class="labkit-tiles">{tiles}</div></div>'
    )


def legend() -> str:
    """What each colour means."""
    items = "".join(
        f'<span class="swatch" style="background:{colour}"></span>{STATE_WORDS[state]}'
        for state, colour in STATE_COLOURS.items()
    )
    return f'<div class="labkit-legend">{items}; a tile\'s border: its owner</div>'


def render(picture: NodeLayout, caption: str) -> str:
    """The whole picture: caption, node boxes, the pods on no node, the legend."""
    boxes = "".join(node_box(b) for b in picture.boxes)
    waiting = ""
    if picture.unscheduled:
        tiles = "".join(tile(p) for p in picture.unscheduled)
        waiting = (
            f'<div class="labkit-unscheduled" data-pods="{len(picture.unscheduled)}">'
            f"<b>on no node</b> ({len(picture.unscheduled)} pending: no node fits them yet)"
            f'<div class="labkit-tiles">{tiles}</div></div>'
        )
    return (
        f'{STYLE}<div class="labkit-ppn"><div class="caption">{escape(caption)}</div>'
        f'<div class="nodes">{boxes}</div>{waiting}{legend()}</div>'
    )
