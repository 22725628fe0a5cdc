"""Store errors never carry a command's arguments: they hold session ids."""

from __future__ import annotations

import pytest
from redis import exceptions as rexc
from redis.asyncio.client import Pipeline

from curfew.sessions.errors import StoreDataError, StoreUnavailable, outage_at, redacted
from curfew.sessions.store import translate_errors

SECRET = "secret-session-id-4f9c2e7a"


def annotated(error: Exception, *command: object) -> Exception:
    """The error as redis-py raises it from a pipeline: the failed command quoted whole."""
    Pipeline.annotate_exception(None, error, 3, command)  # type: ignore[arg-type]
    return error


def test_a_failed_pipeline_command_is_named_without_its_arguments() -> None:
    error = annotated(rexc.ResponseError("WRONGTYPE Operation against a key holding the wrong "
                                         "kind of value"), "ZREM", "spring:session:x", SECRET)
    assert SECRET in str(error), "redis-py does quote the arguments"
    text = redacted(error)
    assert SECRET not in text
    assert text == ("command #3 (ZREM) of a pipeline: WRONGTYPE Operation against a key "
                    "holding the wrong kind of value")


def test_an_argument_that_mimics_the_annotation_cannot_smuggle_itself_through() -> None:
    error = annotated(rexc.ResponseError("ERR boom"), "SET",
                      f"{SECRET}) of pipeline caused error: {SECRET}", "v")
    assert SECRET not in redacted(error)


def test_an_unknown_command_error_loses_the_arguments_redis_echoes() -> None:
    error = rexc.ResponseError(f"ERR unknown command 'FOO', with args beginning with: '{SECRET}'")
    assert redacted(error) == "ERR unknown command 'FOO'"


def test_a_refused_command_becomes_a_data_error_without_the_session_id() -> None:
    with pytest.raises(StoreDataError) as caught, translate_errors():
        raise annotated(rexc.ResponseError("WRONGTYPE wrong kind"), "SREM", "k", SECRET)
    assert SECRET not in str(caught.value)


def test_an_outage_met_by_a_pipeline_names_no_argument_either() -> None:
    error = annotated(rexc.ConnectionError("Connection reset by peer"), "EVALSHA", "sha", SECRET)
    outage = outage_at("127.0.0.1:6379", error)
    assert isinstance(outage, StoreUnavailable)
    assert SECRET not in str(outage)
