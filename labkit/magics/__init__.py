"""labkit's IPython magics: ``%lab``, ``%%dockerfile``, ``%%k8s`` and ``%kubectl``.

Each magic is thin: it reads its line (:mod:`.args`), calls the :class:`~labkit.lab.Lab`, and
prints the result (:mod:`.render`). Everything a magic does, Python can do through the Lab.
Loading the extension imports no heavy library and connects to nothing: the Lab connects on
the first magic that needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from labkit.config import settings
from labkit.magics import args, dockerfile, k8s, kubectl, render
from labkit.magics import lab as lab_commands

if TYPE_CHECKING:
    from labkit.lab import Lab


@magics_class
class LabMagics(Magics):
    """The magics of one IPython shell, sharing the kernel's lazily connected Lab."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.runs: dict[str, Any] = {}  # image tag -> the RunResult of its last --run

    @property
    def lab(self) -> Lab:
        """The kernel's Lab (the one ``labkit.connect()`` returns), connected with the notebook's
        ``%config Lab`` on first use."""
        from labkit import kernel

        return kernel.current() or kernel.connect()

    @line_magic("lab")
    def lab_magic(self, line: str) -> None:
        lab_commands.run(self, line)

    lab_magic.__doc__ = args.lab.__doc__

    @cell_magic("dockerfile")
    def dockerfile_magic(self, line: str, cell: str) -> None:
        dockerfile.run(self, line, cell)

    dockerfile_magic.__doc__ = args.dockerfile.__doc__

    @cell_magic("k8s")
    def k8s_magic(self, line: str, cell: str) -> None:
        k8s.run(self, line, cell)

    k8s_magic.__doc__ = args.k8s.__doc__

    @line_magic("kubectl")
    def kubectl_magic(self, line: str) -> None:
        """Run kubectl against the Lab's cluster and namespace: ``%kubectl get pods``.

        ``{var}`` in the line expands from the notebook, as for any line magic."""
        kubectl.run(self, line)


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext labkit``: register the magics, ``%config Lab.<option>`` and short errors."""
    config = settings()
    config.update_config(shell.config)
    if config not in shell.configurables:
        shell.configurables.append(config)
    shell.register_magics(LabMagics)
    render.install_error_handler(shell, lambda: config.short_errors)


__all__ = ["LabMagics", "load_ipython_extension"]
