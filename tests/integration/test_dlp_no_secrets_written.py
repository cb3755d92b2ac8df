"""No secret planted in the environment is ever written: events, logs, checkpoints, files.

Secrets are planted everywhere a careless agent could pick them up -- the environment's API
key variables, the vault's signing keys and every token it issues, and a key and a card
number pasted into helpdesk tickets the agent reads -- then real runs go to file-backed
stores in ``tmp_path``. Every file written is scanned byte for byte, and every record is
read back through its API and scanned as text (a database may compress what it stores).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from agentlab.adapters import open_audit_log, open_conversation_log, open_store
from agentlab.core.clock import TickingClock
from agentlab.core.ids import IdFactory
from agentlab.lab.live import open_live_agent
from agentlab.runtime import ReviewDecision, ScriptedReviewer
from agentlab.security import CredentialVault, TokenBroker, VaultAuth, open_api_vault
from agentlab.world import World, build_world_app

TASKS = (
    ("single", "bob", "helpdesk", "What is the status of the SAP password reset ticket?"),
    ("multi", "bob", "helpdesk", "Which tickets are open? Tell me about the VPN one."),
    ("single", "alice", "procurement", "Order 16 TONER-BK-05 from SUP-000103."),
    ("single", "alice", "procurement", "Email buyer@example.co.jp that the toner is ordered."),
)


def _forms(value: str | bytes) -> list[bytes]:
    """How a secret could appear in a file: raw, hex, base64."""
    raw = value.encode() if isinstance(value, str) else value
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


def test_no_secret_reaches_any_file_or_record(
    tmp_path: Path, agentlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted_env = {
        "OPENAI_API_KEY": f"sk-proj-planted{secrets.token_hex(12)}",
        "AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
        "AGENTLAB_CONVERSATION_KEY": Fernet.generate_key().decode(),
    }
    for name, value in planted_env.items():
        monkeypatch.setenv(name, value)
    pasted_key = f"sk-live-{secrets.token_hex(16)}"
    card = "4111 1111 1111 1111"

    clock = TickingClock()
    vault, api_keys = open_api_vault(clock=clock)
    issued: list[str] = []
    real_issue = CredentialVault.issue

    def spy(self: CredentialVault, credential: str, **kwargs: Any) -> Any:
        token = real_issue(self, credential, **kwargs)
        issued.append(token.value)
        return token

    monkeypatch.setattr(CredentialVault, "issue", spy)
    world = World(clock=clock, api_keys=api_keys)
    # People paste what they should not: a key and a card number, into tickets.
    for ticket_id, body in (
        ("TCK-000002", f"Here is my API key so you can test: {pasted_key}"),
        ("TCK-000001", f"Charge the VPN token to card {card} please."),
    ):
        ticket = world.helpdesk.with_comment(ticket_id, body, at=world.now())
        world.helpdesk.store(ticket)

    key = planted_env["AGENTLAB_CONVERSATION_KEY"].encode()
    store = open_store(f"duckdb:///{tmp_path}/runs.duckdb")
    audit = open_audit_log(f"duckdb:///{tmp_path}/audit.duckdb")
    conversation = open_conversation_log(f"duckdb:///{tmp_path}/conversations.duckdb", key=key)
    approve = ScriptedReviewer(lambda _r: ReviewDecision.approve("rita"))

    async def runs() -> None:
        transport = httpx.ASGITransport(app=build_world_app(world))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://world", auth=VaultAuth(TokenBroker(vault))
        ) as http:
            for n, (config, actor, use_case, text) in enumerate(TASKS):
                async with open_live_agent(
                    config,
                    store=store,
                    audit=audit,
                    conversation=conversation,
                    reviewer=approve,
                    world_http=http,
                    checkpoint_url=f"duckdb:///{tmp_path}/checkpoints.duckdb",
                    checkpoint_key=key,
                    clock=clock,
                    ids=IdFactory.seeded(n),
                ) as live:
                    run = await live.agent.arun(text, actor=actor, use_case=use_case)
                    assert run.state.is_finished

    asyncio.run(runs())
    assert issued, "the runs reached the world's systems with vault tokens"
    records: list[str] = []
    for run_id in store.run_ids():
        records += [e.model_dump_json() for e in store.read(run_id)]
        records += [t.text for t in conversation.read(run_id)]
    records += [r.model_dump_json() for r in audit.read()]
    store.close()
    audit.close()
    conversation.close()

    secret_values: dict[str, list[bytes]] = {
        **{name: _forms(value) for name, value in planted_env.items()},
        **{f"vault key {name}": _forms(value) for name, value in api_keys.items()},
        **{f"token {n}": _forms(token) for n, token in enumerate(issued)},
        "pasted key": _forms(pasted_key),
        "card number": _forms(card) + _forms(card.replace(" ", "")),
    }
    files = [p for root in (tmp_path, agentlab_home) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "runs.duckdb" for p in files)
    for path in files:
        data = path.read_bytes()
        for name, forms in secret_values.items():
            assert not any(form in data for form in forms), f"{name} found in {path}"
    text = "\n".join(records)
    assert "TCK-000002" in text  # the records hold the tickets the agent read ...
    for name, forms in secret_values.items():
        assert not any(form.decode("latin-1") in text for form in forms), f"{name} in a record"
    assert "[masked:api_key]" in text  # ... with what DLP took out of them
    assert json.dumps(card) not in text
