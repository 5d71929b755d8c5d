"""The last resort for exceptions no handler knows: `500 UNKNOWN`, and one log record whose
size does not depend on what the exception (or the request) carried."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from registry.api.errors import MAX_LOGGED_CHARS, ResponseAborted, UnexpectedErrors
from tests.inprocess.asgi import call

pytestmark = pytest.mark.anyio
SECRET = "Basic " + "s" * (4 * 1024 * 1024)


async def fails_with_the_header_in_its_message(scope: Scope, receive: Receive, send: Send) -> None:
    try:
        raise UnicodeError("cannot read " + SECRET)
    except UnicodeError as exc:
        raise ValueError("\n".join([SECRET] * 10)) from exc


async def fails_after_the_response_started(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise ValueError(SECRET)


async def test_an_unexpected_error_is_500_unknown_and_logged_once_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = UnexpectedErrors(fails_with_the_header_in_its_message)
    response = await call(app, "GET", "/v2/" + "p" * 100_000, {"authorization": SECRET})
    assert response.status == 500 and response.codes() == ["UNKNOWN"]
    (record,) = caplog.records
    text = record.getMessage()
    assert record.exc_info is None and "ValueError" in text and "UnicodeError" in text
    assert len(text) < 50_000
    assert all(len(line) <= MAX_LOGGED_CHARS + 60 for line in text.splitlines())


async def test_after_the_response_started_the_connection_is_dropped_with_a_short_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ResponseAborted) as raised:
        await call(UnexpectedErrors(fails_after_the_response_started), "GET", "/v2/")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert len(str(raised.value)) < 100
    (record,) = caplog.records
    assert len(record.getMessage()) < 10_000


def test_the_app_answers_unexpected_errors_itself(app: Starlette) -> None:
    assert UnexpectedErrors in [middleware.cls for middleware in app.user_middleware]
    assert Exception not in app.exception_handlers
