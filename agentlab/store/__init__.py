"""The event store: the EventStore port, the append rules, projections, the in-memory store."""

from agentlab.store.memory import MemoryEventStore, MemoryLog
from agentlab.store.projection import RunState, StepState, project_run
from agentlab.store.protocol import EventStore
from agentlab.store.recorder import ResumedRun, RunRecorder
from agentlab.store.rules import RunTail, check_batch

__all__ = [
    "EventStore",
    "MemoryEventStore",
    "MemoryLog",
    "ResumedRun",
    "RunRecorder",
    "RunState",
    "RunTail",
    "StepState",
    "check_batch",
    "project_run",
]
