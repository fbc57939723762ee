"""The text of a FailedScheduling: upstream's FitError, counting the filters' reasons over the
nodes and saying what preemption could have done."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

NO_NODES = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


def failure_message(total: int, failures: Mapping[str, tuple[list[str], bool]]) -> str:
    """kube-scheduler's FitError text: reasons counted over nodes, then what preemption found.
    ``failures`` maps a node to its reasons and whether preemption could help there at all."""
    if total == 0:
        return NO_NODES
    reasons = Counter(r for found, _ in failures.values() for r in found)
    preemption = Counter(
        NO_VICTIMS if resolvable else PREEMPTION_NOT_HELPFUL for _, resolvable in failures.values()
    )

    def histogram(counts: Counter[str]) -> str:
        return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))

    return (
        f"0/{total} nodes are available: {histogram(reasons)}. "
        f"preemption: 0/{total} nodes are available: {histogram(preemption)}."
    )
