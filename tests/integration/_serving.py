"""Serve an ASGI app with uvicorn on a free local port, in a thread, for one test.

The package's own helper (``agentlab.adapters.local_servers``), which the notebooks and the
benchmarks use too.
"""

from __future__ import annotations

from agentlab.adapters.local_servers import serve_in_thread as serving

__all__ = ["serving"]
