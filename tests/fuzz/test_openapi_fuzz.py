"""Schemathesis over the server's own /api/v1/openapi.json, as a signed-in user, on both databases.

Every operation of the document gets schema-driven inputs, valid and invalid ("positive" and
"negative" generation), with path parameters sometimes set to ids that really exist (a user,
the group, a conversation, a file...) so that the handlers behind the 404s are reached too.
What is checked is the contract's: no 5xx, and every error in the shape
`{"error": {"code", "message", "details"?}}` with the status its code names.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response

from .budget import SERVER_THREAD, fuzz_settings
from .world import World
from .contract import check_http_answer

pytestmark = SERVER_THREAD

EXAMPLES = 12  # per operation and generation phase; times LUCKY_FUZZ_EXAMPLES


def errors_in_contract_shape(ctx: Any, response: Response, case: Case) -> bool | None:
    """Every error is the contract's JSON (PROTOCOL.md, "Conventions")."""
    if response.status_code < 400:
        return None  # a success may be a PNG or a file's bytes
    try:
        body = response.json()
    except ValueError:
        body = response.content
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    check_http_answer(response.status_code, content_type, body, f"{case.method} {case.formatted_path}")
    return None


def _with_real_ids(world: World) -> Any:
    """A hook: each path parameter is, half the time, an id that exists in the world."""

    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        if not isinstance(path_parameters, dict) or not path_parameters:
            return st.just(path_parameters)
        choices = {}
        for name, value in path_parameters.items():
            real = world.ids.get(name)
            choices[name] = st.sampled_from([value, *real]) if real else st.just(value)
        return st.fixed_dictionaries(choices)

    return flatmap_path_parameters


@pytest.fixture
def api_schema(world: World, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    """The served app's own OpenAPI document, loaded by schemathesis, ids of the world mixed in."""
    # schemathesis 4.32's lazy schemas read `Node._nodeid`, which pytest 9.2 renamed `_id`;
    # they only use it to label each operation's subtest.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    status, document = world.app.call("GET", "/api/v1/openapi.json")
    assert status == 200, document
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=world.app.url)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    database="none")
    schema.hook(_with_real_ids(world))
    return schema


# Logging out would end the fuzzing user's session half-way; tests/http covers logout.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/v1/auth/logout")


@schema.parametrize()
@fuzz_settings(EXAMPLES)
def test_every_operation_answers_within_the_contract(case: Case, world: World) -> None:
    response = case.call(headers={"Authorization": f"Bearer {world.token}"}, timeout=30)
    case.validate_response(response, checks=[not_a_server_error, errors_in_contract_shape])
