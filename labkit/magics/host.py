"""What each magic's module needs of the magics object: the kernel's Lab and the running images.

The modules take this :class:`MagicsHost` rather than :class:`labkit.magics.LabMagics`, so the
package imports its modules and no module imports the package back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from labkit.lab import Lab


class MagicsHost(Protocol):
    """The magics of one shell, as a magic's module sees them."""

    runs: dict[str, Any]  # image tag -> the RunResult of its last --run

    @property
    def lab(self) -> Lab:
        """The kernel's Lab."""
        ...
