"""Tokens are kept as hashes and map to an actor and scopes; the OpenAPI spec in docs is current."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentlab.cli import app
from agentlab.cli.serve import openapi_text
from agentlab.core.errors import ConfigError
from agentlab.gateway import TokenBook, hash_token, issue_token, revoke_token

SPEC = Path(__file__).parents[3] / "docs" / "openapi.json"
runner = CliRunner()


def test_the_openapi_spec_in_docs_is_current() -> None:
    current = openapi_text()
    assert SPEC.read_text(encoding="utf-8") == current, (
        "docs/openapi.json is stale: run `agentlab serve --write-openapi docs/openapi.json`"
    )
    spec = json.loads(current)
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    run_request = spec["components"]["schemas"]["RunRequest"]
    assert run_request["required"] == ["task", "use_case"]
    assert "actor" in run_request["properties"]


def test_an_issued_token_is_kept_as_a_hash_and_authenticates_to_its_actor(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    issued = issue_token(path, name="alice-laptop", actor="alice", scopes=("runs:submit",))
    text = path.read_text()
    assert issued.token not in text
    assert hash_token(issued.token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    book = TokenBook.load(path)
    caller = book.authenticate(issued.token)
    assert caller is not None
    assert (caller.token_name, caller.actor, caller.may("runs:submit")) == (
        "alice-laptop",
        "alice",
        True,
    )
    assert not caller.may("audit:read")
    assert book.authenticate(issued.token + "x") is None
    with pytest.raises(ConfigError, match="exists"):
        issue_token(path, name="alice-laptop", actor="alice", scopes=())
    revoke_token(path, "alice-laptop")
    assert TokenBook.load(path).authenticate(issued.token) is None
    with pytest.raises(ConfigError, match="no token named"):
        revoke_token(path, "alice-laptop")


def test_a_bad_token_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n  - name: x\n    actor: alice\n    scopes: [runs:submit]\n")
    with pytest.raises(ConfigError, match=r"tokens\.yaml:2.*sha256"):
        TokenBook.load(path)


def test_the_tokens_cli_issues_lists_and_revokes(agentlab_home: Path) -> None:
    issued = runner.invoke(
        app,
        ["tokens", "issue", "ci", "--actor", "alice", "--scope", "runs:submit"],
        env={"COLUMNS": "200"},
    )
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("agl_")
    book = TokenBook.load(agentlab_home / "tokens.yaml")
    assert book.authenticate(token) is not None
    listed = runner.invoke(app, ["tokens", "list"], env={"COLUMNS": "200"})
    assert "ci" in listed.stdout
    assert token not in listed.stdout
    assert runner.invoke(app, ["tokens", "revoke", "ci"]).exit_code == 0
    assert TokenBook.load(agentlab_home / "tokens.yaml").records == ()


def test_serve_without_a_token_file_says_how_to_make_one(agentlab_home: Path) -> None:
    result = runner.invoke(app, ["serve", "--store", "memory://"])
    assert result.exit_code == 2
    assert "no token file" in result.output
    assert "agentlab tokens issue" in result.output
