"""Schemathesis over the OpenAPI schema: no input makes the API answer 5xx."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from feederdao.domain.network import DeviceKind
from tests.api.conftest import NOON, make_env


def test_no_server_errors(database_url: str, tmp_path: Path) -> None:
    env = make_env(database_url, str(tmp_path))
    member = env.join(DeviceKind.LOAD)
    env.open_interval(NOON)
    schema = schemathesis.openapi.from_asgi("/openapi.json", env.client.app)
    operations = list(schema.get_all_operations())
    assert len(operations) >= 25
    seen: dict[str, set[int]] = {}
    for result in operations:
        assert isinstance(result, Ok), result
        operation = result.ok()
        for headers in (env.auth("operator"), member.auth):
            _fuzz(operation, headers, seen)
    assert all(code < 500 for codes in seen.values() for code in codes), seen
    env.service.db.dispose()


def _fuzz(operation, headers: dict[str, str], seen: dict[str, set[int]]) -> None:  # type: ignore[no-untyped-def]
    @given(case=operation.as_strategy())
    @settings(
        max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(headers=headers)
        seen.setdefault(operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    check()
