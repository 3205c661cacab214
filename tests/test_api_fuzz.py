"""The whole HTTP API under generated requests (schemathesis, from the API's own OpenAPI
description): whatever a client sends, valid or not, no answer is a server error, and
every answer is one the description documents, in the documented shape."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode, checks
from schemathesis.core.result import Ok

from api.app import create_app
from api.auth import Role
from api.config import ApiSettings
from telemetry.complaints.services import SERVICES
from telemetry.migrate import migrate
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.support.api_process import ApiProcess
from tests.support.api_server import make_token, register_devices
from tests.support.database import drop_schema
from tests.support.env import unique_settings

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def api_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The API on a fresh schema with a few devices."""
    settings: Settings = unique_settings()
    migrate(settings)
    register_devices(
        settings,
        DeviceRecord(device_id="B-001", fleet=Fleet.BUS, route="1"),
        DeviceRecord(device_id="T-ARM-001", fleet=Fleet.TRUCK, district="gueliz"),
        DeviceRecord(device_id="L-MED-00001", fleet=Fleet.LIGHT, district="medina", circuit="C-1"),
    )
    log = tmp_path_factory.mktemp("api") / "api.log"
    # Rate limits off (they have their own tests): generated POSTs must reach the handlers.
    limits = {
        "RASD_API_OPEN311_RATE_PER_ADDRESS": "1000000",
        "RASD_API_OPEN311_RATE_PER_KEY": "1000000",
    }
    proc = ApiProcess(settings, log, port=None, **limits)
    try:
        proc.start()
        yield proc
    finally:
        proc.close()
        drop_schema(settings)


# The description is the app's own, built without a server: one test per operation and mode.
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings(), ApiSettings()).openapi())

# Parameters, responses, security and schema types vary by API: none matter here.
Operation = APIOperation[Any, Any, Any, Any]


def _operations() -> dict[str, Operation]:
    found = {}
    for result in SCHEMA.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()  # the description itself is broken
        found[result.ok().label] = result.ok()
    return found


OPERATIONS = _operations()
# Only an operation that takes something can be sent something invalid.
SERVICE_CODES = [svc.code for svc in SERVICES]
TAKES_INPUT = sorted(
    label
    for label, op in OPERATIONS.items()
    if any(len(part) for part in (op.path_parameters, op.query, op.headers, op.body))
)
CASES = [(GenerationMode.POSITIVE, label) for label in sorted(OPERATIONS)] + [
    (GenerationMode.NEGATIVE, label) for label in TAKES_INPUT
]


@pytest.mark.parametrize(("mode", "label"), CASES, ids=[f"{m.value}-{lb}" for m, lb in CASES])
def test_no_request_makes_a_server_error(
    mode: GenerationMode, label: str, api_process: ApiProcess
) -> None:
    # A token of its own: a generated DELETE /tokens/{id} may revoke another test's.
    token = asyncio.run(make_token(api_process.settings, Role.OPERATOR))
    base_url = f"http://127.0.0.1:{api_process.port}"
    headers = {"Authorization": f"Bearer {token}"}
    # Open311 POST takes its key in the form: a reporter's, so generated requests get past it
    # to validation, storage and linking.
    reporter = asyncio.run(make_token(api_process.settings, Role.REPORTER))
    answered: list[int] = []

    @given(case=OPERATIONS[label].as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Case[Operation]) -> None:
        if (
            case.method == "POST"
            and case.path.startswith("/open311/")
            and isinstance(case.body, dict)
        ):
            case.body["api_key"] = reporter
            if mode is GenerationMode.POSITIVE:  # a real service here, so the rest gets judged
                case.body["service_code"] = SERVICE_CODES[len(case.body) % len(SERVICE_CODES)]
                case.body.pop("jurisdiction_id", None)
                case.body.setdefault("lat", 31.6295)  # Jemaa el-Fna, unless one was generated
                case.body.setdefault("long", -7.9811)
        response = case.call_and_validate(
            base_url=base_url,
            headers=headers,
            checks=[
                checks.not_a_server_error,
                checks.status_code_conformance,
                checks.content_type_conformance,
                checks.response_schema_conformance,
            ],
        )
        answered.append(response.status_code)

    try:
        check()
    except Unsatisfiable:
        # Every value of every parameter is acceptable (free text): nothing invalid to send.
        assert mode is GenerationMode.NEGATIVE
        return
    assert answered
