"""One connection to a cluster: the official client, plus raw HTTPS for paths it does not model.

Foreign errors (``ApiException``, connection errors) become :class:`~labkit.errors.ClusterError`
here, once, with the server's own message.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

from labkit.errors import ClusterError


class KubeClient:
    """A cluster as its kubeconfig describes it."""

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
        conf = self.api.configuration
        self.server = conf.host.rstrip("/")
        parsed = urllib.parse.urlsplit(self.server)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.base_path = parsed.path
        self.tls = parsed.scheme == "https"
        self._headers = {}
        auth = conf.get_api_key_with_prefix("authorization") or conf.get_api_key_with_prefix("BearerToken")
        if auth:
            self._headers["Authorization"] = auth
        self._ssl: ssl.SSLContext | None = None
        if self.tls:
            if conf.verify_ssl:
                self._ssl = ssl.create_default_context(cafile=conf.ssl_ca_cert)
            else:  # the kubeconfig says insecure-skip-tls-verify
                self._ssl = ssl._create_unverified_context()
            if conf.cert_file and conf.key_file:
                self._ssl.load_cert_chain(conf.cert_file, conf.key_file)

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        """A new keep-alive connection to the API server."""
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Authentication headers (plus ``extra``)."""
        return {**self._headers, **(extra or {})}

    def get_json(self, path: str, timeout: float = 10.0) -> tuple[int, Any]:
        """GET a JSON document by raw path: (status, parsed body or None)."""
        conn = self.connection(timeout)
        try:
            conn.request("GET", self.base_path + path, headers=self.headers({"Accept": "application/json"}))
            response = conn.getresponse()
            body = response.read()
        except OSError as e:
            raise ClusterError(f"the API server at {self.server} does not answer: {e}") from e
        finally:
            conn.close()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, None

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
            raise ClusterError(f"the API server at {self.server} does not answer: {e}") from e
