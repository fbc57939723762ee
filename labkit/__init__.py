"""labkit: learn Docker and Kubernetes hands-on, in Jupyter notebooks."""

from labkit.errors import LabError

__version__ = "0.1.0"
__all__ = ["Lab", "LabError", "__version__", "connect", "load_ipython_extension"]

# -- Lab side: connect and Lab load on first use, so `import labkit` stays light -----------------
_LAZY = {"connect": "labkit.kernel", "Lab": "labkit.lab"}


def __getattr__(name: str) -> object:
    """``labkit.connect`` and ``labkit.Lab``, imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


# -- magics side: load_ipython_extension ---------------------------------------------------------


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext labkit``: the magics, ``%config Lab.<option>`` and short errors (see labkit.magics)."""
    from labkit.magics import load_ipython_extension as load  # IPython is only imported here

    load(ipython)
