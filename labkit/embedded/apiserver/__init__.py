"""The embedded cluster's HTTP API server (aiohttp), speaking the Kubernetes API."""
