"""Schema fuzzing of /api/v1/* from the app's own OpenAPI (schemathesis, in-process ASGI).

Bounded: 30 examples per operation. Every answer must be in the contract: no 5xx, a documented
status, a body matching its schema, and every non-2xx in the error shape.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hit_server.server import create_app
from hit_server.testing import TEST_API_KEY, paper_settings


@schemathesis.check
def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every non-2xx answer is {"error": {"code", "message"}} and nothing else."""
    if response.status_code < 300:
        return None
    body = response.json()
    if set(body) != {"error"} or set(body["error"]) != {"code", "message"}:
        raise AssertionError(f"{response.status_code} outside the error shape: {body}")
    return None


def api_schema() -> Any:
    data_dir = Path(tempfile.mkdtemp(prefix="hit-fuzz-"))
    app = create_app(paper_settings(data_dir, rate_limit_per_minute=1_000_000))
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/api/v1/")


schema = api_schema()  # one app for the module; schemathesis runs its lifespan


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_fuzz_answers_within_the_contract(case: Any) -> None:
    case.call_and_validate(
        headers={"X-API-Key": TEST_API_KEY},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            error_shape,
        ],
    )
