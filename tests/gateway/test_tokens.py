"""Token store and `schakel gateway token issue|revoke|list`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.gateway.errors import GatewayError
from services.gateway.tokens import TokenStore
from tests.gateway.helpers import NOW

pytestmark = pytest.mark.timeout(60)


def test_issue_authenticate_revoke_list(migrated_engine):
    store = TokenStore(migrated_engine, lambda: NOW)
    token, info = store.issue("partner", "liander")
    other, _ = store.issue("recipient", "riec-nh")
    principal = store.authenticate(token)
    assert principal is not None
    assert (principal.kind, principal.name, principal.token_id) == (
        "partner",
        "liander",
        info.token_id,
    )
    assert store.authenticate(other).kind == "recipient"
    assert [t.principal for t in store.list()] == ["liander", "riec-nh"]
    assert [t.principal for t in store.list("recipient")] == ["riec-nh"]
    assert store.revoke(info.token_id)
    assert store.authenticate(token) is None
    assert store.list("partner")[0].revoked_at is not None


@pytest.mark.parametrize("name", ["Liander", "", "a b", "x" * 70])
def test_names_must_be_party_slugs(migrated_engine, name):
    with pytest.raises(GatewayError, match="slugs"):
        TokenStore(migrated_engine, lambda: NOW).issue("partner", name)


def test_tokens_differ_every_time(migrated_engine):
    store = TokenStore(migrated_engine, lambda: NOW)
    assert store.issue("partner", "liander")[0] != store.issue("partner", "liander")[0]


def test_the_cli_shows_a_token_once_and_manages_it(tmp_path):
    database = f"sqlite:///{tmp_path / 'audit.db'}"
    runner = CliRunner()
    issued = runner.invoke(
        app, ["gateway", "token", "issue", "--partner", "liander", "--database", database]
    )
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("skl_")
    token_id = token.split("_")[1]
    listed = runner.invoke(app, ["gateway", "token", "list", "--json", "--database", database])
    assert listed.exit_code == 0, listed.output
    assert token_id in listed.stdout and token not in listed.stdout
    assert '"revoked_at":null' in listed.stdout
    revoked = runner.invoke(app, ["gateway", "token", "revoke", token_id, "--database", database])
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(app, ["gateway", "token", "revoke", token_id, "--database", database])
    assert again.exit_code == 1
    both = runner.invoke(
        app,
        ["gateway", "token", "issue", "--partner", "a", "--recipient", "b", "--database", database],
    )
    assert both.exit_code != 0
