"""The request-distribution widget: a bar per replica, growing while the requests are sent.

:class:`RequestDistribution` sends through a run it gets from ``start(choice)`` (the Lab makes
a :class:`~labkit.kube.traffic.TrafficRun`), batch by batch in a thread of its own, and
redraws after each batch. Changing the choice and pressing "send" runs again, so a learner
can compare random, round robin, a pinned connection and keep-alive. ``.data`` is the last
run's DataFrame, ``.result`` the run's result.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import ipywidgets as w

from labkit.kube.models import Requests
from labkit.widgets import distribution_view


class Run(Protocol):
    """A traffic run as the widget uses it."""

    source: str

    def send(self, n: int) -> Requests: ...

    def replicas(self) -> dict[str, str | None]: ...

    def result(self) -> Any: ...


Start = Callable[[str], Run]
REDRAW = 0.15  # seconds of requests between two redraws


class RequestDistribution(w.VBox):
    """Requests per replica of a Service, live while they are sent."""

    def __init__(self, service: str, start: Start, *, n: int, choices: Sequence[str], choice: str,
                 batches: int = 20) -> None:  # fmt: skip
        self.service, self.start, self.batches = service, start, batches
        self.view = w.HTML()
        self.message = w.HTML()
        self.choice = w.ToggleButtons(options=list(choices), value=choice, description="balancing")
        self.n = w.BoundedIntText(value=n, min=1, max=100_000, description="requests",
                                  layout=w.Layout(width="180px"))  # fmt: skip
        self.send_button = w.Button(description="send", button_style="primary")
        self.send_button.on_click(lambda _b: self.send())
        super().__init__([w.HBox([self.choice, self.n, self.send_button]), self.view, self.message])
        self.result: Any = None
        self.state = distribution_view.Tally(service, choice)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._draw()

    # -- running ----------------------------------------------------------------------------------

    def send(self) -> bool:
        """Start a run with the chosen balancing (False if one is still running)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._stop.clear()
            choice, n = str(self.choice.value), int(self.n.value)
            self.state = distribution_view.Tally(self.service, choice, total=n)
            self._draw()
            self._thread = threading.Thread(target=self._run, args=(choice, n),
                                            name="labkit-request-distribution", daemon=True)  # fmt: skip
            self._thread.start()
            return True

    def _run(self, choice: str, n: int) -> None:
        self.send_button.disabled = True
        try:
            run = self.start(choice)
            self.state.replicas = run.replicas()
            self.state.initial = set(self.state.replicas)
            step, sent = min(20, max(1, n // self.batches)), 0
            while sent < n and not self._stop.is_set():
                started = time.monotonic()
                batch = run.send(min(step, n - sent))
                sent += len(batch)
                self.state.add(batch, run.replicas(), run.source)
                self._draw()
                # about REDRAW seconds a batch: live enough to watch, few enough not to slow the run
                per_request = (time.monotonic() - started) / max(len(batch), 1)
                step = max(1, min(n // 2 or 1, int(REDRAW / max(per_request, 1e-4))))
            self.result = run.result()
            self.state.notes = list(getattr(self.result, "notes", []))
            self.state.done = True
            self._draw()
        except Exception as err:  # any error: the widget shows it, and the kernel carries on
            self.state.failed = str(getattr(err, "message", None) or err)
            self._draw()
        finally:
            self.send_button.disabled = False

    def wait(self, timeout: float | None = 120.0) -> RequestDistribution:
        """Wait until the current run has finished; returns self."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self

    @property
    def data(self) -> Any:
        """The last finished run's DataFrame: one row per request (i, pod, node, status, ...)."""
        self.wait()
        return None if self.result is None else self.result.frame

    # -- drawing ----------------------------------------------------------------------------------

    def _draw(self) -> None:
        self.view.value = distribution_view.html(self.state)

    def close(self) -> None:
        """Stop a run under way (after its current batch) and close the widget."""
        self._stop.set()
        self.wait(30)
        for child in (self.view, self.message, self.choice, self.n, self.send_button):
            child.close()
        super().close()

    def __repr__(self) -> str:
        choice = self.choice.value
        return f"RequestDistribution(service={self.service!r}, n={self.n.value}, balancing={choice!r})"

    def png(self) -> bytes:
        """The bars as PNG bytes (what nbviewer and GitHub show)."""
        return distribution_view.png(self.state)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = dict(super()._repr_mimebundle_(**kwargs) or {})
        data["text/plain"] = repr(self)
        data["image/png"] = base64.b64encode(self.png()).decode()
        return data
