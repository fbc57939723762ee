"""One cluster as its kubeconfig describes it: the official client, and raw HTTPS through kube.http.

The kubeconfig is read by the official client's loader, and only here. Foreign errors
(``ApiException``, connection errors) of typed calls become :class:`~labkit.errors.ClusterError`
in :meth:`KubeClient.call`, once, with the server's own message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labkit.errors import ClusterError
from labkit.kube.http import Api, Endpoint, unreachable


class KubeClient:
    """A cluster as its kubeconfig describes it: typed calls (``core``, ``apps``) and raw JSON."""

    def __init__(self, kubeconfig: str | Path | None = None, context: str | None = None) -> None:
        from kubernetes import client, config  # deferred: the import costs a quarter of a second

        try:
            self.api = config.new_client_from_config(
                config_file=str(kubeconfig) if kubeconfig else None, context=context
            )
        except (config.ConfigException, OSError) as e:
            raise ClusterError(f"cannot use kubeconfig {kubeconfig or '(default)'}: {e}") from e
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.endpoint = Endpoint.from_configuration(self.api.configuration)
        self.server = self.endpoint.server
        self.host, self.port, self.base_path = self.endpoint.host, self.endpoint.port, self.endpoint.base_path

    def connection(self, timeout: float = 10.0) -> Any:
        """A new keep-alive connection to the API server (an ``http.client`` connection)."""
        return self.endpoint.connection(timeout)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Authentication headers (plus ``extra``)."""
        return self.endpoint.headers(extra)

    def http(self) -> Api:
        """A new :class:`~labkit.kube.http.Api` (raw JSON over its own keep-alive connection)."""
        return Api(self.endpoint)

    def get_json(self, path: str) -> tuple[int, Any]:
        """GET a JSON document by raw path over a connection of its own: (status, parsed body or None)."""
        api = self.http()
        try:
            return api.request("GET", path)
        finally:
            api.close()

    def call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a typed client method, turning API errors into ClusterError with the server's message."""
        from kubernetes.client.exceptions import ApiException

        try:
            return method(*args, **kwargs)
        except ApiException as e:
            try:
                message = json.loads(e.body).get("message", e.reason)
            except (TypeError, ValueError):
                message = e.reason or str(e)
            raise ClusterError(message) from e
        except OSError as e:
            raise unreachable(self.server, e) from e
