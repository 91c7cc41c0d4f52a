"""Issue #13: the HTTP API's rough edges, each as a user met it, through the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hit_server.server import create_app
from hit_server.testing import RunningServer, paper_settings, running_server

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(paper_settings(tmp_path)) as running:
        yield running


def assert_error(reply: httpx.Response, status: int, code: str) -> str:
    """The error's message, once the reply is `status` in the error shape with `code`."""
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert message
    return message


def routes_with_a_body() -> list[str]:
    """Every /api/v1 route whose OpenAPI operation takes a request body (all of them are POST)."""
    app = create_app(paper_settings(Path("/nonexistent-never-used")))
    return [
        path
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1") and "requestBody" in operations.get("post", {})
    ]


# -- 4. a body that is not JSON is 400 invalid_json; JSON that breaks the schema is 422 ---------------


def test_api_routes_with_a_body_are_signals_and_halt() -> None:
    assert set(routes_with_a_body()) == {"/api/v1/signals", "/api/v1/halt"}


@pytest.mark.parametrize("path", routes_with_a_body())
@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", JSON),  # malformed: FastAPI's json_invalid validation error
        (b'{"reason": "caf\xe9"}', JSON),  # not UTF-8: FastAPI's own HTTP 400
        (b'{"reason": "maintenance"}', {"Content-Type": "text/plain"}),  # not sent as JSON
        (b'{"reason": "maintenance"}', {}),  # no content type at all
    ],
    ids=["malformed", "not-utf8", "text-plain", "no-content-type"],
)
async def test_api_body_that_is_not_json_is_400_invalid_json_on_every_route(
    server: RunningServer, path: str, content: bytes, headers: dict[str, str]
) -> None:
    reply = await server.http.post(path, content=content, headers=headers)

    assert "JSON" in assert_error(reply, 400, "invalid_json")
    assert not (await server.http.get("/api/v1/stats")).json()["halted"]


@pytest.mark.parametrize("path", routes_with_a_body())
@pytest.mark.parametrize("body", [b"[1, 2]", b'{"bogus": 1}', b'"text"'], ids=["array", "unknown", "string"])
async def test_api_json_that_breaks_the_schema_is_422_on_every_route(
    server: RunningServer, path: str, body: bytes
) -> None:
    reply = await server.http.post(path, content=body, headers=JSON)

    assert_error(reply, 422, "invalid_request")
