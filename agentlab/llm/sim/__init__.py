"""The offline model: a deterministic, seeded agent policy behind OpenAI's wire protocol.

``build_sim_app()`` serves it (``agentlab sim serve`` over a socket); ``SimulatorPolicy``
answers one request dict in-process. It is always a simulator, never a vendor's model: its
``system_fingerprint`` starts with ``agentlab-simulator`` and every profile is named
``sim-*``. See ``docs/simulator.md``.
"""

from agentlab.llm.sim.app import LATENCY_HEADER, SIMULATOR_HEADER, build_sim_app
from agentlab.llm.sim.policy import SimAnswer, SimulatorPolicy
from agentlab.llm.sim.profiles import (
    DEFAULT_PROFILES_PATH,
    ErrorRates,
    LatencyModel,
    SimProfile,
    TokenModel,
    load_profiles,
)
from agentlab.llm.sim.wire import SYSTEM_FINGERPRINT_PREFIX, RequestError

__all__ = [
    "DEFAULT_PROFILES_PATH",
    "LATENCY_HEADER",
    "SIMULATOR_HEADER",
    "SYSTEM_FINGERPRINT_PREFIX",
    "ErrorRates",
    "LatencyModel",
    "RequestError",
    "SimAnswer",
    "SimProfile",
    "SimulatorPolicy",
    "TokenModel",
    "build_sim_app",
    "load_profiles",
]
