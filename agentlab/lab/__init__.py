"""The lab: what users open agentlab for. So far, the scripted demo run of the event store."""

from agentlab.lab.demo import DemoResult, record_demo_run

__all__ = ["DemoResult", "record_demo_run"]
