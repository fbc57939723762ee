"""``%kubectl ARGS``: kubectl against the Lab's cluster and namespace, whatever the user's own
kubeconfig says. IPython has already expanded ``{var}`` in the line, as for any line magic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from labkit.magics.host import MagicsHost


def run(magics: MagicsHost, line: str) -> None:
    """The ``%kubectl`` magic: print what kubectl printed."""
    if not line.strip():
        raise UsageError("give kubectl its arguments, e.g. %kubectl get pods")
    output = magics.lab.kubectl(line)
    if output:
        print(output, end="" if output.endswith("\n") else "\n", flush=True)
