from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from typing import get_args

import pytest
from pydantic import BaseModel, ValidationError

from agentlab.core import events
from agentlab.core.errors import InvalidEvent
from agentlab.core.events import (
    EVENT_KINDS,
    ArtifactRecorded,
    Event,
    RunStarted,
    StepProposed,
    ensure_events,
    parse_event,
)
from agentlab.core.records import Artifact, Run, Step

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = Run(run_id="run_1", task="t", actor="alice", started_at=T0)
STARTED = RunStarted(run_id="run_1", seq=0, at=T0, run=RUN)


def test_malformed_json_names_where_it_came_from() -> None:
    with pytest.raises(InvalidEvent, match=r"duckdb:///x run_1 seq 4: .*field '\(root\)'"):
        parse_event("{not json", where="duckdb:///x run_1 seq 4")


def test_a_field_of_the_wrong_type_is_named() -> None:
    body = STARTED.model_dump(mode="json") | {"seq": "four"}
    with pytest.raises(InvalidEvent, match=r"^\[INVALID_EVENT\] row 9: .*field '[\w.]*seq'"):
        parse_event(json.dumps(body), where="row 9")


def test_an_unknown_kind_suggests_a_newer_version() -> None:
    body = STARTED.model_dump(mode="json") | {"kind": "run_teleported"}
    with pytest.raises(InvalidEvent, match="newer version") as caught:
        parse_event(json.dumps(body), where="row 1")
    assert caught.value.hint is not None


def test_a_wrong_type_gives_no_newer_version_hint() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(json.dumps({"kind": "run_started", "seq": 0}), where="row 1")
    assert caught.value.hint is None


def test_a_valid_event_parses_back_equal() -> None:
    assert parse_event(STARTED.model_dump_json(), where="row 0") == STARTED


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (STARTED, "takes a list of events, got RunStarted"),
        ("run_started", "takes a list of events, got str"),
        (b"[]", "takes a list of events, got bytes"),
        (7, "takes a list of events, got int"),
        ([STARTED, STARTED.model_dump()], "item 1 of the batch is a dict"),
    ],
    ids=["lone-event", "str", "bytes", "int", "dict-in-list"],
)
def test_ensure_events_refuses_what_is_not_a_list_of_events(items: object, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        ensure_events(items)


def test_ensure_events_accepts_any_iterable_of_events() -> None:
    assert ensure_events(iter([STARTED])) == [STARTED]
    assert ensure_events(()) == []


def test_events_refuse_a_record_of_another_run() -> None:
    other_step = Step(
        step_id="step_1", run_id="run_2", position=0, tool="t", arguments={}, side_effect="read"
    )
    other_artifact = Artifact(artifact_id="art_1", run_id="run_2", kind="answer")
    with pytest.raises(ValidationError, match="differs from run_id 'run_1'"):
        RunStarted(run_id="run_1", seq=0, at=T0, run=RUN.model_copy(update={"run_id": "run_2"}))
    with pytest.raises(ValidationError, match=r"step\.run_id 'run_2' differs"):
        StepProposed(run_id="run_1", seq=1, at=T0, step=other_step)
    with pytest.raises(ValidationError, match=r"artifact\.run_id 'run_2' differs"):
        ArtifactRecorded(run_id="run_1", seq=1, at=T0, artifact=other_artifact)


def test_event_kinds_name_every_event_class_of_the_union() -> None:
    members = get_args(get_args(Event)[0])
    defined = {
        cls
        for _, cls in inspect.getmembers(events, inspect.isclass)
        if cls.__module__ == events.__name__
        and issubclass(cls, BaseModel)
        and "kind" in cls.model_fields
    }
    assert set(members) == defined
    kinds = [cls.model_fields["kind"].default for cls in members]
    assert len(set(kinds)) == len(members)
    assert set(kinds) == EVENT_KINDS
