"""labkit's one error tree. Foreign errors are converted once, where they enter labkit.

LabError                    anything labkit reports to a user: a message and a hint
├── ClusterError            an embedded cluster cannot start, stop or be reached
└── UsageError              a command or call was given something it cannot use
"""

from __future__ import annotations


class LabError(Exception):
    """An error meant for a learner: what happened, and what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ClusterError(LabError):
    """An embedded cluster cannot start, stop or be reached."""


class UsageError(LabError):
    """A command or call was given something it cannot use."""
