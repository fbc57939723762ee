"""The colours and words of the widgets, shared by their HTML and their PNG."""

from __future__ import annotations

import hashlib

# a pod tile's fill, by PodInfo.state
STATE_COLOURS = {
    "running": "#2e9e5b",
    "not-ready": "#e0b428",
    "pending": "#9aa5b1",
    "terminating": "#7b61c9",
    "succeeded": "#4a90d9",
    "failed": "#d64541",
    "crash-looping": "#a3201d",
}
STATE_WORDS = {
    "running": "running, ready",
    "not-ready": "running, not ready",
    "pending": "pending",
    "terminating": "terminating",
    "succeeded": "completed",
    "failed": "failed",
    "crash-looping": "crash-looping",
}
# a node box's edge and its word, by NodeInfo.condition
NODE_COLOURS = {"ready": "#2e9e5b", "cordoned": "#e0b428", "not-ready": "#d64541", "stopped": "#5f6b7a"}
NODE_WORDS = {"ready": "Ready", "cordoned": "Ready, cordoned", "not-ready": "NotReady", "stopped": "stopped"}
# owners get one of these (the tile's border and badge), the same one in every run
OWNER_COLOURS = ("#1f77b4", "#8c564b", "#e377c2", "#17becf", "#393b79", "#111111")  # none a state colour
NO_OWNER = "#444444"


def owner_colour(owner: str | None) -> str:
    """The colour of an owner ("Deployment/web"), stable across runs and machines."""
    if not owner:
        return NO_OWNER
    digest = hashlib.sha256(owner.encode()).digest()
    return OWNER_COLOURS[digest[0] % len(OWNER_COLOURS)]


def owner_badge(owner: str | None) -> str:
    """The short name a tile shows for its owner: "web" for "Deployment/web"."""
    return (owner or "").rpartition("/")[2] or "pod"
