"""labkit's one error tree. Foreign errors are converted once, where they enter labkit.

LabError                    anything labkit reports to a user: a message and a hint
├── ClusterError            an embedded cluster cannot start, stop or be reached
├── UsageError              a command or call was given something it cannot use
├── BuildError              an image could not be built (Dockerfile line, step output, exit code)
│   └── BaseImageError      the base image named by FROM is not there and cannot be pulled
├── ImageError              an image is not in labkit's store, or cannot be tagged, removed or exported
├── EngineError             the Docker Engine cannot be reached, or refused a request
└── ContainerError          a container could not be started or stopped before it answered
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


class BuildError(LabError):
    """An image could not be built: the Dockerfile line, what the step printed and its exit code."""

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        line: int | None = None,
        output: str = "",
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.line = line
        self.output = output
        self.exit_code = exit_code


class BaseImageError(BuildError):
    """The base image named by FROM is not there and cannot be pulled."""


class ImageError(LabError):
    """An image is not in labkit's store, or cannot be tagged, removed or exported."""


class EngineError(LabError):
    """The Docker Engine cannot be reached, or refused a request."""


class ContainerError(LabError):
    """A container could not be started, or stopped before it answered."""


# -- the Lab side (labkit.lab, labkit.clusters, labkit.kube) -------------------------------------
#
# LabError
# ├── TargetError            the chosen cluster target cannot be used (no Docker Engine for kind,
# │                          no kind binary, no registry named for a kubeconfig context, ...)
# ├── ManifestError          a manifest cannot be applied: YAML syntax (its line), fields the API
# │                          server rejected, a kind the cluster does not serve
# ├── NotReadyError          objects did not become ready in time: the unready pods and why
# └── KubectlError           kubectl exited non-zero (its stderr is the message)


class TargetError(LabError):
    """The chosen cluster target cannot be used: what is missing, and how to get it."""


class ManifestError(LabError):
    """A manifest cannot be applied: YAML syntax (with its line), invalid fields, an unknown kind."""

    def __init__(self, message: str, hint: str = "", *, line: int | None = None) -> None:
        super().__init__(message, hint)
        self.line = line


class NotReadyError(LabError):
    """Objects did not become ready in time; the message names the unready pods and why."""

    def __init__(self, message: str, hint: str = "", *, pods: dict[str, str] | None = None) -> None:
        super().__init__(message, hint)
        self.pods = pods or {}  # unready pod name -> its reason ("ErrImagePull", "Pending", ...)


class KubectlError(LabError):
    """kubectl exited non-zero; the message is what it printed on stderr."""


class LabWarning(UserWarning):
    """Something works but will surprise a learner (``:latest`` on kind, a pending LoadBalancer)."""
