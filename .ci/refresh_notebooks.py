"""Run tutorial notebooks top to bottom and store their outputs (what nbval compares against).

Widget state is not stored (the widgets' PNG fallback shows instead where no widget runs), and
nothing but the outputs changes. Usage: python .ci/refresh_notebooks.py notebooks/01-containers.ipynb
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def refresh(path: Path) -> None:
    """Execute one notebook in its own folder and write it back with the new outputs."""
    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    client = NotebookClient(notebook, timeout=180, kernel_name="python3", store_widget_state=False,
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    client.execute()
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    print(f"{path}: {len(notebook.cells)} cells in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        refresh(Path(name))
