"""/docs and /redoc work without internet access: every script, style and icon they load is served by
the server itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from hit_server.server import create_app
from hit_server.testing import paper_settings


class _Links(HTMLParser):
    """The URLs a page loads: script sources and link hrefs (stylesheet, icon)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            self.links[values.get("rel") or ""] = values["href"] or ""


def links_of(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app without its lifespan: the documentation needs no exchange, journal or API key."""
    app = create_app(paper_settings(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def fetched(http: httpx.AsyncClient, url: str) -> httpx.Response:
    assert url.startswith("/") and not url.startswith("//"), f"{url} is not on this server"
    reply = await http.get(url)
    assert reply.status_code == 200, url
    return reply


async def test_api_docs_page_loads_swagger_ui_from_the_server_itself(http: httpx.AsyncClient) -> None:
    page = await fetched(http, "/docs")
    assert page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text  # no URL to any other host (a CDN)
    links = links_of(page.text)
    [script] = links.scripts
    js = await fetched(http, script)
    css = await fetched(http, links.links["stylesheet"])
    icon = await fetched(http, links.links["shortcut icon"])
    assert "javascript" in js.headers["content-type"] and "SwaggerUIBundle" in js.text
    assert css.headers["content-type"].startswith("text/css") and ".swagger-ui" in css.text
    assert icon.headers["content-type"] == "image/png"
    assert "url: '/openapi.json'" in page.text
    assert "/api/v1/signals" in (await fetched(http, "/openapi.json")).json()["paths"]


async def test_api_redoc_page_loads_redoc_from_the_server_itself(http: httpx.AsyncClient) -> None:
    page = await fetched(http, "/redoc")
    assert "://" not in page.text  # neither a CDN nor Google Fonts
    [script] = links_of(page.text).scripts
    js = await fetched(http, script)
    assert "javascript" in js.headers["content-type"] and "Redoc" in js.text
    assert 'spec-url="/openapi.json"' in page.text


async def test_api_docs_files_are_not_listed_in_the_openapi_schema(http: httpx.AsyncClient) -> None:
    paths = (await fetched(http, "/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]
