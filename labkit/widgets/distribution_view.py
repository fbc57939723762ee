"""What the request-distribution widget draws: a tally of requests per replica, as HTML and PNG."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from html import escape

from labkit.kube.models import RequestSample

BAR = "#4a90d9"
GONE = "#9aa5b1"
ERROR = "#d64541"
SOURCES = {
    "records": "exact: from the cluster's own records of each connection",
    "response": "from the answers: each app says its pod name",
    "unknown": "unknown: the cluster keeps no records and the answers name no pod",
}


@dataclass
class Tally:
    """Requests per pod so far, the replicas behind the Service, and how the run went."""

    service: str
    choice: str
    total: int = 0  # requests the run will send
    counts: dict[str, int] = field(default_factory=dict)
    nodes: dict[str, str | None] = field(default_factory=dict)
    replicas: dict[str, str | None] = field(default_factory=dict)  # ready now: pod -> node
    initial: set[str] = field(default_factory=set)  # ready when the run started
    errors: int = 0
    sent: int = 0
    source: str = ""
    notes: list[str] = field(default_factory=list)
    done: bool = False
    failed: str = ""

    def add(self, batch: tuple[RequestSample, ...] | list[RequestSample], replicas: dict[str, str | None],
            source: str) -> None:  # fmt: skip
        """Count one batch of requests."""
        for sample in batch:
            self.sent += 1
            if sample.error or (sample.status or 0) >= 500:
                self.errors += 1
            elif sample.pod:
                self.counts[sample.pod] = self.counts.get(sample.pod, 0) + 1
                self.nodes[sample.pod] = sample.node
        self.replicas, self.source = replicas, source

    def rows(self) -> list[tuple[str, str | None, int, str]]:
        """(pod, node, requests, mark) per replica: mark is "", "new" or "gone"."""
        pods = sorted(set(self.counts) | set(self.replicas))
        out = []
        for pod in pods:
            mark = "gone" if pod not in self.replicas else "new" if pod not in self.initial else ""
            out.append((pod, self.nodes.get(pod) or self.replicas.get(pod), self.counts.get(pod, 0), mark))
        return out


def _headline(tally: Tally) -> str:
    state = "failed" if tally.failed else "done" if tally.done else f"sending ({tally.sent}/{tally.total})"
    counts = f"{tally.sent} requests, {tally.errors} errors"
    return f"service/{tally.service} · {tally.choice} · {counts} · {state}"


def html(tally: Tally) -> str:
    """Bars per replica with counts and shares, the errors, and where the pods came from."""
    rows = tally.rows()
    most = max([1, *(n for _, _, n, _ in rows)])
    lines = []
    for pod, node, n, mark in rows:
        share = 100.0 * n / tally.sent if tally.sent else 0.0
        colour = GONE if mark == "gone" else BAR
        label = f" ({mark})" if mark else ""
        lines.append(
            f'<tr class="labkit-replica" data-pod="{escape(pod)}" data-requests="{n}" data-mark="{mark}">'
            f'<td>{escape(pod)}{label}</td><td>{escape(node or "-")}</td>'
            f'<td style="width:320px"><div style="background:{colour};height:14px;'
            f'width:{320 * n / most:.0f}px"></div></td><td>{n}</td><td>{share:.1f}%</td></tr>'
        )
    if tally.errors:
        lines.append(
            f'<tr class="labkit-errors" data-requests="{tally.errors}"><td>errors</td><td></td>'
            f'<td><div style="background:{ERROR};height:14px;width:{320 * tally.errors / most:.0f}px"></div>'
            f"</td><td>{tally.errors}</td><td>{100.0 * tally.errors / max(tally.sent, 1):.1f}%</td></tr>"
        )
    notes = [SOURCES[tally.source]] if tally.source in SOURCES else []
    notes += tally.notes + ([f"the run failed: {tally.failed}"] if tally.failed else [])
    return (
        f'<div class="labkit-distribution" data-sent="{tally.sent}" data-done="{str(tally.done).lower()}">'
        f"<div><b>{escape(_headline(tally))}</b></div>"
        '<table><tr><th>pod</th><th>node</th><th></th><th>requests</th><th>share</th></tr>'
        f'{"".join(lines)}</table>'
        + "".join(f'<div class="labkit-note">{escape(n)}</div>' for n in notes)
        + "</div>"
    )


def png(tally: Tally) -> bytes:
    """The same bars as a PNG (fixed size, no timestamp: the same tally gives the same bytes)."""
    from matplotlib.figure import Figure

    rows = tally.rows() + ([("errors", None, tally.errors, "error")] if tally.errors else [])
    figure = Figure(figsize=(6.4, 0.9 + 0.32 * max(len(rows), 1)), dpi=80)
    axes = figure.add_axes((0.38, 0.12, 0.52, 0.88 - 0.5 / figure.get_figheight()))
    labels = [f"{pod} ({node})" if node else pod for pod, node, _, _ in rows]
    values = [n for _, _, n, _ in rows]
    colours = [ERROR if m == "error" else GONE if m == "gone" else BAR for _, _, _, m in rows]
    positions = list(range(len(rows)))[::-1]
    axes.barh(positions, values, color=colours)
    axes.set_yticks(positions, labels, fontsize=7)
    axes.tick_params(axis="x", labelsize=7)
    for y, n in zip(positions, values, strict=True):
        axes.text(n, y, f" {n}", va="center", fontsize=7)
    figure.suptitle(_headline(tally), fontsize=8)
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
