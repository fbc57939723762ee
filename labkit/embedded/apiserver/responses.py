"""JSON answers of the API server: the body, its status and the ``Warning`` headers of field warnings."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    """A JSON answer, with ``Warning`` headers for field warnings."""
    response = web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")
    for text in warnings or []:
        response.headers.add("Warning", "299 - " + json.dumps(text))
    return response
