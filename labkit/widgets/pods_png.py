"""The pods-per-node picture as a PNG, for where no widget renders (nbviewer, GitHub).

Drawn with matplotlib's object API (no pyplot, no global state), with fixed sizes and no
timestamp in the file, so the same picture gives the same bytes on every run.
"""

from __future__ import annotations

import io

from labkit.widgets.node_layout import NodeLayout
from labkit.widgets.palette import NODE_COLOURS, NODE_WORDS, STATE_COLOURS, owner_colour

COLUMNS = 4  # tiles per row inside a node box
TILE, GAP = 1.0, 0.3  # a tile's side and the gap between tiles (in data units)
BOX_WIDTH = COLUMNS * (TILE + GAP) + GAP


def png(picture: NodeLayout, caption: str) -> bytes:
    """The picture as PNG bytes: a box per node (and one for the pods on no node), a tile per pod."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    columns = [(b.name, b.condition, b.pods, f"{NODE_WORDS[b.condition]} · {len(b.pods)}/{b.capacity}")
               for b in picture.boxes]  # fmt: skip
    if picture.unscheduled:
        columns.append(("on no node", "pending", picture.unscheduled, f"{len(picture.unscheduled)} pending"))
    rows = max([1, *((len(pods) + COLUMNS - 1) // COLUMNS for _, _, pods, _ in columns)])
    height = rows * (TILE + GAP) + GAP
    width = len(columns) * (BOX_WIDTH + 0.6)
    top = height + 2.6  # room for each box's two lines and the caption
    scale = 0.32  # inches per data unit
    figure = Figure(figsize=(max(width, 8.0) * scale, top * scale), dpi=80)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, max(width, 8.0))
    axes.set_ylim(-0.2, top)
    axes.axis("off")
    axes.text(0.3, top - 0.3, caption, ha="left", va="top", fontsize=9)
    for k, (name, condition, pods, words) in enumerate(columns):
        left = k * (BOX_WIDTH + 0.6) + 0.3
        edge = NODE_COLOURS.get(condition, "#9aa5b1")
        axes.add_patch(Rectangle((left, 0), BOX_WIDTH, height, fill=False, edgecolor=edge, linewidth=2.5,
                                 linestyle="--" if condition == "pending" else "-"))  # fmt: skip
        axes.text(left + 0.1, height + 0.15, f"{name}\n{words}", ha="left", va="bottom", fontsize=7)
        for i, pod in enumerate(pods):
            row, col = divmod(i, COLUMNS)
            x = left + GAP + col * (TILE + GAP)
            y = height - (row + 1) * (TILE + GAP)
            axes.add_patch(Rectangle((x, y), TILE, TILE, facecolor=STATE_COLOURS[pod.state],
                                     edgecolor=owner_colour(pod.owner), linewidth=1.5))  # fmt: skip
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
