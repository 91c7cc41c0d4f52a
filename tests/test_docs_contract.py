"""docs/api.md cannot drift from the trading server: it is checked against the app's own OpenAPI document.

The rules the page must keep (each failure names what to add or remove):
- a `### METHOD /path` heading for every operation of the app, and none for an operation it lacks;
- in that route's section: every parameter, the request model and each 2xx answer's model named in
  backticks, and each 2xx status code written in bold (`**201**`);
- a `### ModelName` heading for every model the routes reach (requests, answers, errors, nested models),
  every field of it named in backticks there, and none for a model the app lacks;
- every value of every enum the routes reach named in backticks somewhere on the page;
- every error status of the routes, and the API-key header, in the "Errors" and "Authentication" sections.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from hit_server.server import create_app
from hit_server.testing import paper_settings

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
ROUTE_HEADING = re.compile(r"### ((?:GET|POST|PUT|PATCH|DELETE) /\S*)")
MODEL_HEADING = re.compile(r"### ([A-Z]\w*)")
HEADING = re.compile(r"#{1,3} .+?(?=\s*$)")

OpenApi = dict[str, Any]


def sections(doc: str) -> dict[str, str]:
    """Heading line (`### TradeSignal`) -> the text under it, up to the next heading of level 1 to 3 (code
    fences skipped)."""
    found: dict[str, str] = {}
    lines: list[str] = []
    title, fenced = "", False
    for line in doc.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        found[title] = "\n".join(lines)
        title, lines = heading.group(0), []
    found[title] = "\n".join(lines)
    return found


def headed(found: dict[str, str], pattern: re.Pattern[str]) -> dict[str, str]:
    """The sections whose heading matches `pattern`, by the heading's captured name."""
    return {match.group(1): body for title, body in found.items() if (match := pattern.fullmatch(title))}


def named(text: str) -> set[str]:
    """What a text names in backticks."""
    return set(re.findall(r"`([^`\n]+)`", text))


def operations(openapi: OpenApi) -> dict[str, dict[str, Any]]:
    """`METHOD /path` -> its OpenAPI operation."""
    return {
        f"{method.upper()} {path}": operation
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def refs(node: Any) -> set[str]:
    """The names of the component schemas a piece of OpenAPI refers to directly."""
    if isinstance(node, dict):
        own = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


def reachable(openapi: OpenApi) -> set[str]:
    """Every component schema the operations reach, through nested models too."""
    schemas = openapi["components"]["schemas"]
    todo = refs(list(operations(openapi).values()))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo |= refs(schemas[name])
    return seen


def route_problems(operation_key: str, operation: dict[str, Any], section: str) -> list[str]:
    """What the section of one route fails to name: parameters, request model, 2xx codes and models."""
    problems = []
    words = named(section)
    for parameter in operation.get("parameters", []):
        if parameter["name"] not in words:
            problems.append(f"{operation_key}: parameter `{parameter['name']}` is not named")
    for model in sorted(refs(operation.get("requestBody", {}))):
        if model not in words:
            problems.append(f"{operation_key}: request model `{model}` is not named")
    for status, answer in operation["responses"].items():
        if not status.startswith("2"):
            continue
        if f"**{status}**" not in section:
            problems.append(f"{operation_key}: status **{status}** is not written in its section")
        for model in sorted(refs(answer) - words):
            problems.append(f"{operation_key}: answer model `{model}` is not named")
    return problems


def route_check(openapi: OpenApi, found: dict[str, str]) -> list[str]:
    documented = headed(found, ROUTE_HEADING)
    ops = operations(openapi)
    problems = [
        f"{key}: not documented (add a '### {key}' section)" for key in sorted(ops.keys() - documented.keys())
    ]
    problems += [
        f"{key}: documented, but the app has no such route" for key in sorted(documented.keys() - ops.keys())
    ]
    for key in sorted(ops.keys() & documented.keys()):
        problems += route_problems(key, ops[key], documented[key])
    return problems


def model_check(openapi: OpenApi, found: dict[str, str], doc: str) -> list[str]:
    schemas = openapi["components"]["schemas"]
    used = reachable(openapi)
    models = {name for name in used if "properties" in schemas[name]}
    documented = headed(found, MODEL_HEADING)
    problems = [
        f"model {name}: not documented (add a '### {name}' section)"
        for name in sorted(models - documented.keys())
    ]
    problems += [
        f"model {name}: documented, but the app has no such model"
        for name in sorted(documented.keys() - schemas.keys())
    ]
    for name in sorted(models & documented.keys()):
        missing = sorted(set(schemas[name]["properties"]) - named(documented[name]))
        problems += [f"model {name}: field `{field}` is not named in its section" for field in missing]
    words = named(doc)
    for name in sorted(used):
        for value in schemas[name].get("enum", []):
            if str(value) not in words:
                problems.append(f"enum {name}: value `{value}` is not named anywhere")
    return problems


def status_and_auth_check(openapi: OpenApi, found: dict[str, str]) -> list[str]:
    errors = found.get("## Errors", "")
    codes = {status for op in operations(openapi).values() for status in op["responses"] if status[0] in "45"}
    problems = [
        f"status {code} is not in the Errors section"
        for code in sorted(codes)
        if not re.search(rf"\b{code}\b", errors)
    ]
    headers = {
        scheme["name"]
        for scheme in openapi["components"].get("securitySchemes", {}).values()
        if scheme.get("type") == "apiKey"
    }
    auth = named(found.get("## Authentication", ""))
    problems += [
        f"header `{header}` is not named in the Authentication section" for header in sorted(headers - auth)
    ]
    return problems


def doc_problems(doc: str, openapi: OpenApi) -> list[str]:
    """Everything the page and the app disagree on; empty when they agree."""
    found = sections(doc)
    return (
        route_check(openapi, found) + model_check(openapi, found, doc) + status_and_auth_check(openapi, found)
    )


@pytest.fixture(scope="module")
def settings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs_contract")


@pytest.fixture(scope="module")
def openapi(settings_dir: Path) -> OpenApi:
    return create_app(paper_settings(settings_dir)).openapi()


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_docs_api_matches_the_apps_openapi(doc: str, openapi: OpenApi) -> None:
    assert doc_problems(doc, openapi) == []


def test_docs_contract_sees_every_route_and_model_of_the_app(doc: str, openapi: OpenApi) -> None:
    documented = headed(sections(doc), ROUTE_HEADING)
    assert set(documented) == set(operations(openapi))
    assert {"POST /api/v1/signals", "GET /health"} <= documented.keys()
    assert {"TradeSignal", "TradeResponse", "OrderInfo", "ErrorResponse"} <= reachable(openapi)


def test_docs_contract_fails_for_a_route_added_without_docs(doc: str, settings_dir: Path) -> None:
    app = create_app(paper_settings(settings_dir))

    @app.get("/api/v1/undocumented")
    async def undocumented() -> dict[str, str]:
        return {}

    problems = doc_problems(doc, app.openapi())
    assert problems == [
        "GET /api/v1/undocumented: not documented (add a '### GET /api/v1/undocumented' section)"
    ]


def test_docs_contract_fails_for_a_documented_route_the_app_lacks(doc: str, openapi: OpenApi) -> None:
    problems = doc_problems(doc + "\n### DELETE /api/v1/signals\n\nGone.\n", openapi)
    assert problems == ["DELETE /api/v1/signals: documented, but the app has no such route"]


def test_docs_contract_fails_for_a_field_added_without_docs(doc: str, openapi: OpenApi) -> None:
    changed = copy.deepcopy(openapi)
    changed["components"]["schemas"]["OrderInfo"]["properties"]["fee"] = {"type": "string"}
    changed["paths"]["/api/v1/trades"]["get"]["parameters"].append({"name": "side", "in": "query"})
    assert doc_problems(doc, changed) == [
        "GET /api/v1/trades: parameter `side` is not named",
        "model OrderInfo: field `fee` is not named in its section",
    ]


def test_docs_contract_fails_for_a_field_or_status_dropped_from_the_docs(doc: str, openapi: OpenApi) -> None:
    without_raw_text = doc.replace("| `raw_text` |", "| raw text |")
    assert doc_problems(without_raw_text, openapi) == [
        "model TradeSignal: field `raw_text` is not named in its section"
    ]
    without_201 = doc.replace("- **201**: the first time", "- the first time")
    assert doc_problems(without_201, openapi) == [
        "POST /api/v1/signals: status **201** is not written in its section"
    ]
