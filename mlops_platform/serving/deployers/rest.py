"""A small JSON-over-HTTP client shared by the Vertex AI and Azure ML deployers (their REST APIs)."""

from __future__ import annotations

from typing import Any

from mlops_platform.serving.deployers.base import DeployError, PlannedRequest


def call(request: PlannedRequest, token: str, timeout: float = 120.0) -> tuple[int, dict[str, Any]]:
    import httpx

    try:
        response = httpx.request(
            request.method,
            request.url,
            json=request.body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise DeployError(f"{request.method} {request.url}: {type(exc).__name__}: {exc}") from exc
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = {}
    if response.status_code >= 400 and response.status_code != 404:
        raise DeployError(f"{request.method} {request.url} answered HTTP {response.status_code}: {response.text[:300]}")
    return response.status_code, body if isinstance(body, dict) else {}
