"""The gateway over real HTTP: uvicorn on a loopback port, an httpx client, the simulator.

A run that needs a person waits, is approved through the API and commits exactly once; a
caller without the scope gets 403 and nothing happens; malformed requests get 422 naming the
field; a spent SLO budget sends new runs to the use case's fallbacks.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentlab.agents import StopConditions
from agentlab.gateway import TokenBook, TokenRecord, build_gateway_app, hash_token
from agentlab.ops import SLO, SLOSet, configure_tracing
from agentlab.store import MemoryEventStore
from agentlab.store.audit import MemoryAuditLog

LAPTOPS = "Order 3 LAPTOP-16-DEV from SUP-000104."  # 7,350 USD: above the policy's limit
TONER = "Order 16 TONER-BK-05 from SUP-000103."


def token(name: str) -> str:
    return f"agl_test-token-of-{name}"


def record(name: str, actor: str, *scopes: str) -> TokenRecord:
    return TokenRecord(name=name, actor=actor, scopes=scopes, sha256=hash_token(token(name)))


TOKENS = TokenBook(
    (
        record("alice", "alice", "runs:submit", "runs:read"),
        # a reviewer outside the policy's actors, allowed ERP commits by her token
        record("rita", "rita", "approvals:decide", "erp:write", "audit:read", "runs:read_all"),
        # a helpdesk agent: may decide approvals, but holds no erp:write
        record("bob", "bob", "runs:submit", "runs:read", "approvals:decide"),
        record("reader", "alice", "runs:read"),
        # alice again, with a token that may decide ERP commits: still not on her own runs
        record(
            "alice-decides", "alice", "runs:submit", "runs:read", "approvals:decide", "erp:write"
        ),
    )
)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with its lifespan on 127.0.0.1; yield the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Gateway:
    """A served gateway and a client per token."""

    def __init__(self, app: FastAPI, url: str) -> None:
        self.app = app
        self.url = url
        self.store = app.state.gateway.store

    def client(self, name: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token(name)}"} if name else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def diff(self) -> dict[str, Any]:
        return self.app.state.gateway.world.diff()  # type: ignore[no-any-return]

    def kinds(self, run_id: str) -> list[str]:
        return [e.kind for e in self.store.read(run_id)]


@contextmanager
def gateway(**options: Any) -> Iterator[Gateway]:
    app = build_gateway_app(
        store=MemoryEventStore(),
        audit=MemoryAuditLog(),
        tokens=TOKENS,
        slos=options.pop("slos", SLOSet()),
        **options,
    )
    with serving(app) as url:
        yield Gateway(app, url)


def wait_for(client: httpx.Client, run_id: str, *statuses: str) -> dict[str, Any]:
    """Long-poll the run's events until it reaches one of ``statuses``."""
    after, deadline = -1, time.monotonic() + 60
    while time.monotonic() < deadline:
        page = client.get(f"/runs/{run_id}/events", params={"after": after, "wait": 5})
        assert page.status_code == 200, page.text
        body = page.json()
        after = body["next_after"]
        if body["status"] in statuses:
            return client.get(f"/runs/{run_id}").json()  # type: ignore[no-any-return]
    raise AssertionError(f"run {run_id} did not reach {statuses}")


def sse_events(client: httpx.Client, run_id: str, after: int) -> list[tuple[str, dict[str, Any]]]:
    """Read the run's server-sent events until the ``end`` event."""
    received: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/runs/{run_id}/events/stream", params={"after": after}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in reply.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind is not None:
                received.append((kind, json.loads(line.removeprefix("data: "))))
                if kind == "end":
                    break
    return received


def test_a_run_waits_for_approval_is_approved_through_the_api_and_commits_once() -> None:
    with (
        gateway() as gw,
        gw.client("alice") as alice,
        gw.client("rita") as rita,
        gw.client("bob") as bob,
    ):
        started = alice.post("/runs", json={"task": LAPTOPS, "use_case": "procurement"})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        waiting = wait_for(alice, run_id, "awaiting_approval")
        [step] = [s for s in waiting["steps"] if s["is_waiting"]]
        assert step["tool"] == "create_purchase_order"
        assert gw.diff() == {}  # a dry-run only, so far

        # bob may decide approvals, but not ERP commits: he sees none, and cannot approve it
        assert bob.get("/approvals").json() == []
        refused = bob.post(f"/approvals/{step['step_id']}/approve", json={"reason": "sure"})
        assert refused.status_code == 403
        assert "erp:write" in refused.json()["message"]
        assert "step_approved" not in gw.kinds(run_id)

        [pending] = rita.get("/approvals").json()
        assert pending["approval_id"] == step["step_id"]
        assert pending["run_id"] == run_id
        assert pending["preview"]["result"]["total_usd"] == 7350.0
        answered = rita.post(f"/approvals/{step['step_id']}/approve", json={"reason": "new team"})
        assert answered.status_code == 202, answered.text
        assert answered.json()["decision"] == "approved"

        streamed = sse_events(alice, run_id, after=waiting["last_seq"])
        assert streamed[-1] == ("end", {"status": "succeeded", "last_seq": streamed[-2][1]["seq"]})
        assert [kind for kind, _ in streamed].count("step_committed") == 1
        done = alice.get(f"/runs/{run_id}").json()
        assert done["status"] == "succeeded"
        assert done["use_case"] == "procurement"

        # exactly one side effect: one purchase order, nothing else changed
        diff = gw.diff()
        assert set(diff) == {"erp.purchase_orders"}
        [order] = diff["erp.purchase_orders"]["added"]
        assert order["total_usd"] == 7350.0
        assert gw.kinds(run_id).count("step_committed") == 1
        again = rita.post(f"/approvals/{step['step_id']}/approve", json={})
        assert again.status_code == 404
        assert len(gw.diff()["erp.purchase_orders"]["added"]) == 1

        audit = rita.get("/audit", params={"run_id": run_id}).json()
        decisions = [(r["decision"], r["approval"]) for r in audit["records"]]
        assert ("approval_requested", None) in decisions
        assert ("approved", "human:rita") in decisions
        assert [d for d, _ in decisions].count("committed") == 1
        assert rita.get("/audit/verify").json()["is_intact"]

        metrics = httpx.get(f"{gw.url}/metrics").text
        assert (
            'agentlab_runs_total{config="single",model="sim-large",status="succeeded",' in metrics
        )
        assert 'agentlab_tool_calls_total{outcome="ok",tool="create_purchase_order"} 1.0' in metrics


def test_nobody_approves_a_commit_of_their_own_run() -> None:
    with gateway() as gw, gw.client("alice-decides") as alice, gw.client("rita") as rita:
        started = alice.post("/runs", json={"task": LAPTOPS, "use_case": "procurement"})
        run_id = started.json()["run_id"]
        waiting = wait_for(alice, run_id, "awaiting_approval")
        [step] = [s for s in waiting["steps"] if s["is_waiting"]]
        assert alice.get("/approvals").json() == []  # her own run is not hers to decide
        refused = alice.post(f"/approvals/{step['step_id']}/approve", json={"reason": "mine"})
        assert refused.status_code == 403
        assert "second person" in refused.json()["message"]
        assert "step_approved" not in gw.kinds(run_id)
        assert gw.diff() == {}
        assert [p["run_id"] for p in rita.get("/approvals").json()] == [run_id]


def test_what_the_api_shows_of_a_run_is_masked_like_a_log() -> None:
    card = "4111 1111 1111 1111"  # Luhn-valid
    task = f"Open a ticket: my corporate card {card} was declined at the canteen."
    with gateway() as gw, gw.client("bob") as bob:
        started = bob.post("/runs", json={"task": task, "use_case": "helpdesk"})
        run_id = started.json()["run_id"]
        wait_for(bob, run_id, "succeeded", "failed", "awaiting_approval")
        page = bob.get(f"/runs/{run_id}/events").text
        proposed = [e for e in gw.store.read(run_id) if e.kind == "step_proposed"]
        assert proposed, "the agent proposed no tool call"
        assert card not in page
        assert "[masked:card_number]" in page


def test_without_the_scope_a_caller_gets_403_and_nothing_happens() -> None:
    with (
        gateway() as gw,
        gw.client("bob") as bob,
        gw.client("alice") as alice,
        gw.client("reader") as reader,
        gw.client(None) as nobody,
    ):
        task = {"task": TONER, "use_case": "procurement"}
        refused = bob.post("/runs", json=task)  # bob's policy has no procurement
        assert refused.status_code == 403
        assert refused.json()["message"] == "actor 'bob' may not work in use case 'procurement'"
        assert refused.json()["hint"]
        assert reader.post("/runs", json=task).status_code == 403  # no runs:submit
        as_carol = alice.post("/runs", json={**task, "actor": "carol"})
        assert as_carol.status_code == 403
        assert "runs:submit_as" in as_carol.json()["hint"]
        assert reader.get("/approvals").status_code == 403
        assert reader.get("/audit").status_code == 403
        missing = nobody.post("/runs", json=task)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(f"{gw.url}/runs", json=task, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "nope" not in wrong.text  # a token is never echoed
        assert gw.store.run_ids() == []
        assert gw.diff() == {}

        # one run of alice's: bob cannot see it; rita's approval scope is not a read scope
        run_id = alice.post("/runs", json=task).json()["run_id"]
        assert bob.get(f"/runs/{run_id}").status_code == 404
        assert reader.get(f"/runs/{run_id}").status_code == 200


def test_malformed_requests_get_422_naming_the_field() -> None:
    with gateway() as gw, gw.client("alice") as alice:
        cases = [
            ({"use_case": "procurement"}, ["body", "task"]),
            ({"task": "x", "use_case": "procurement", "config": "mega"}, ["body", "config"]),
            ({"task": "x", "use_case": "procurement", "extra": 1}, ["body", "extra"]),
            ({"task": "   ", "use_case": "procurement"}, ["body", "task"]),
        ]
        for body, loc in cases:
            reply = alice.post("/runs", json=body)
            assert reply.status_code == 422, body
            assert loc in [e["loc"] for e in reply.json()["detail"]], reply.json()
            assert ".".join(loc) in reply.json()["message"]
        unknown = alice.post("/runs", json={"task": "x", "use_case": "payroll"})
        assert unknown.status_code == 422
        assert unknown.json()["message"].startswith("body.use_case: the policy has no use case")
        model = alice.post("/runs", json={"task": "x", "use_case": "procurement", "model": "gpt-x"})
        assert model.status_code == 422
        assert model.json()["message"].startswith("body.model:")
        not_json = alice.post(
            "/runs", content=b"{task:", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 422
        assert alice.get("/runs/not-a-run").status_code == 422
        assert "path.run_id" in alice.get("/runs/not-a-run").json()["message"]
        too_long = alice.get("/runs/run_" + "0" * 24 + "/events", params={"wait": 99})
        assert too_long.status_code == 422
        assert "query.wait" in too_long.json()["message"]
        assert gw.store.run_ids() == []


def test_a_spent_error_budget_sends_new_runs_to_the_fallbacks() -> None:
    slos = SLOSet(
        slos=(
            SLO(name="success", kpi="success_rate", target=0.9, window="1h", min_runs=1),  # type: ignore[arg-type]
        )
    )
    # one model call per run: a procurement run cannot finish, so the first one fails
    limits = StopConditions(max_model_calls=1)
    with gateway(slos=slos, limits=limits) as gw, gw.client("alice") as alice:
        task = {"task": TONER, "use_case": "procurement"}
        first = alice.post("/runs", json=task).json()
        assert first["degraded_by"] is None
        assert wait_for(alice, first["run_id"], "failed")["status"] == "failed"
        [status] = alice.get("/slos").json()
        assert status["is_exhausted"]
        assert status["error_budget_remaining"] < 0

        second = alice.post("/runs", json=task).json()
        assert second["degraded_by"] == "success"
        done = wait_for(alice, second["run_id"], "cancelled")
        assert done["degraded_by"] == "success"
        assert "error budget of SLO success is spent" in done["reason"]
        assert "ticket" in done["reason"]
        events = gw.store.read(second["run_id"])
        artifacts = [e.artifact for e in events if e.kind == "artifact_recorded"]  # type: ignore[union-attr]
        [spent] = [a.content for a in artifacts if a.kind == "slo_budget_spent"]
        assert spent["slos"][0]["name"] == "success"  # type: ignore[index]
        assert [a.content["kind"] for a in artifacts if a.kind == "fallback"] == [  # type: ignore[index]
            "rpa",
            "chat_answer",
            "ticket",
        ]
        assert not [e for e in events if e.kind == "model_called"]  # the agent did not run
        [ticket] = gw.diff()["helpdesk.tickets"]["added"]
        assert "error budget" in ticket["body"]
        metrics = httpx.get(f"{gw.url}/metrics").text
        assert 'agentlab_runs_degraded_total{slo="success",use_case="procurement"} 1.0' in metrics
        assert 'agentlab_slo_burn_rate{kpi="success_rate",slo="success",use_case="*"}' in metrics


@pytest.mark.parametrize("config", ["chat_rag", "multi"])
def test_other_configurations_run_through_the_gateway(config: str) -> None:
    task = (
        {"task": "How do I connect to the VPN?", "use_case": "helpdesk"}
        if config == "chat_rag"
        else {"task": TONER, "use_case": "procurement"}
    )
    with gateway() as gw, gw.client("alice") as alice:
        run_id = alice.post("/runs", json={**task, "config": config}).json()["run_id"]
        done = wait_for(alice, run_id, "succeeded", "failed")
        assert done["status"] == "succeeded", done["reason"]
        assert done["config"] == config
        listed = alice.get("/runs").json()
        assert [r["run_id"] for r in listed] == [run_id]


def test_a_rejection_goes_back_to_the_model_and_counts_as_rework() -> None:
    memory = InMemorySpanExporter()
    tracing = configure_tracing(exporter=memory, batch=False)
    try:
        with gateway() as gw, gw.client("alice") as alice, gw.client("rita") as rita:
            run_id = alice.post("/runs", json={"task": LAPTOPS, "use_case": "procurement"}).json()[
                "run_id"
            ]
            wait_for(alice, run_id, "awaiting_approval")
            [pending] = rita.get("/approvals").json()
            empty = rita.post(f"/approvals/{pending['approval_id']}/reject", json={"reason": " "})
            assert empty.status_code == 422
            assert "body.reason" in empty.json()["message"]
            refused = rita.post(
                f"/approvals/{pending['approval_id']}/reject", json={"reason": "over budget"}
            )
            assert refused.status_code == 202
            done = wait_for(alice, run_id, "succeeded", "failed")
            assert gw.diff() == {}  # nothing was ordered
            [order] = [s for s in done["steps"] if s["tool"] == "create_purchase_order"]
            assert order["status"] == "rejected"
            metrics = httpx.get(f"{gw.url}/metrics").text
            assert (
                'agentlab_runs_reworked_total{config="single",use_case="procurement"} 1.0'
                in metrics
            )
            assert 'agentlab_tool_calls_total{outcome="rejected",tool="create_purchase_order"}' in (
                metrics
            )
    finally:
        tracing.shutdown()
    # the run's two stretches were traced: its start (waiting) and its resume
    roots = [s for s in memory.get_finished_spans() if s.name == "invoke_agent single"]
    assert [dict(s.attributes or {})["agentlab.run.id"] for s in roots] == [run_id, run_id]
    assert [dict(s.attributes or {})["agentlab.run.is_resumed"] for s in roots] == [False, True]
