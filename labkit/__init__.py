"""labkit: learn Docker and Kubernetes hands-on, in Jupyter notebooks."""

from labkit.errors import LabError

__version__ = "0.1.0"
__all__ = ["LabError", "__version__"]
