"""Drives one purchase order against a real world server, and can die mid-commit.

python _commit_crash_worker.py crash  STORE WORLD_URL RUN_ID_FILE
    starts a run and proposes a small order; the commit reaches the world, and the
    process is SIGKILLed as the world's answer arrives: before the commit event is written.
python _commit_crash_worker.py resume STORE WORLD_URL RUN_ID_FILE
    resumes the run and carries its open step on; prints the outcome as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx

from agentlab.adapters import open_store
from agentlab.policy import default_policy
from agentlab.runtime import CallRequest, Executor
from agentlab.store import RunRecorder
from agentlab.tools import builtin_tools

REQUEST = CallRequest(actor="alice", use_case="procurement")


async def die_when_the_commit_is_answered(response: httpx.Response) -> None:
    request = response.request
    is_order = request.url.path == "/erp/purchase-orders" and request.method == "POST"
    if is_order and json.loads(request.content)["dry_run"] is False:
        os.kill(os.getpid(), signal.SIGKILL)


async def main(mode: str, store_url: str, world_url: str, run_id_file: Path) -> None:
    hooks = {"response": [die_when_the_commit_is_answered]} if mode == "crash" else {}
    store = open_store(store_url)
    async with httpx.AsyncClient(base_url=world_url, event_hooks=hooks) as http:
        executor = Executor(tools=builtin_tools(), policy=default_policy(), http=http)
        if mode == "crash":
            supplier = (await http.get("/erp/suppliers", params={"query": ""})).json()
            active = next(s for s in supplier["suppliers"] if s["is_active"])
            recorder = RunRecorder.start(store, task="reorder toner", actor="alice")
            run_id_file.write_text(recorder.run_id)
            order = {
                "supplier_id": active["supplier_id"],
                "items": [{"sku": active["skus"][0], "qty": 1}],
                "dry_run": False,
                "idempotency_key": "model-chosen-key-0001",
            }
            await executor.call(recorder, REQUEST, "create_purchase_order", order)
            raise SystemExit("the worker should have been killed before this line")
        recorder, state = RunRecorder.resume(store, run_id_file.read_text())
        [step] = state.open_steps
        outcome = await executor.continue_step(recorder, REQUEST, step)
        recorder.finish("succeeded")
        print(json.dumps({"status": outcome.status, "content": outcome.content}))
    store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
