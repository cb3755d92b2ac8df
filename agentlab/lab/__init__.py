"""The lab: what users open agentlab for. So far, the scripted governed demo run."""

from agentlab.lab.demo import DemoResult, arecord_demo_run, record_demo_run

__all__ = ["DemoResult", "arecord_demo_run", "record_demo_run"]
