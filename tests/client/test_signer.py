"""The partner client signs batches by default: one root signature per request, verified by a
real gateway server (demo mode, TEST keys) once per batch; retries and re-sends keep the
proofs; ``batch=False`` signs each signal on its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from services.client import BatchSigner, PartnerSigner, SignalClient
from services.config import Paths
from services.core.batch_signing import parse_batch
from services.core.covenant.keyring import Keyring
from services.demo.keys import DemoSigner, demo_key_id, demo_private_key
from services.gateway.app import create_gateway_app
from services.gateway.serve import covenant_keys
from services.router.batch import Consumed, route_batch
from services.router.topics import signals_topic
from tests.client.test_client import Flaky, World
from tests.gateway.helpers import NOW, issue_all, make_gateway, serving, signal
from tests.router.helpers import policy_source

pytestmark = pytest.mark.timeout(60)


class Signed(World):
    """The client test world with a gateway in demo mode, which checks signatures."""

    def __init__(self) -> None:
        super().__init__()
        self.keys = covenant_keys(dataclasses.replace(Paths.from_env({}), demo=True))
        self.gateway = make_gateway(self.engine, self.broker, keys=self.keys, monotonic=self.clock)
        self.tokens = issue_all(self.gateway.tokens)

    @property
    def keyring(self) -> Keyring:
        return self.keys()


@pytest.fixture
def world() -> Iterator[Signed]:
    made = Signed()
    yield made
    made.engine.dispose()


def liander() -> PartnerSigner:
    return PartnerSigner(demo_private_key("liander"), demo_key_id("liander"))


def routed_cleanly(world: Signed) -> bool:
    source = policy_source()
    records = [
        Consumed(signals_topic("liander"), 0, offset, raw)
        for offset, (_, raw) in enumerate(world.broker.records("signals.liander"))
    ]
    return (
        route_batch(records, source.current.registry, source.current.policy, NOW).dead_letters == []
    )


@pytest.mark.parametrize("signer", [liander, DemoSigner], ids=["partner-key", "demo"])
def test_each_request_is_one_signed_batch_verified_once(world, signer):
    made = signer()
    assert isinstance(made, BatchSigner)
    before = world.keyring.roots.verifications
    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], sign=made, batch_size=3) as client,
    ):
        result = client.publish([signal(n) for n in range(7)])
    assert len(result.accepted) == 7 and result.rejected == []
    produced = world.produced()
    proofs = sorted((parse_batch(s["batch"]).size, parse_batch(s["batch"]).index) for s in produced)
    assert proofs == [(1, 0), (3, 0), (3, 0), (3, 1), (3, 1), (3, 2), (3, 2)]
    assert len({s["signature"] for s in produced}) == 3
    assert world.keyring.roots.verifications == before + 3
    assert routed_cleanly(world)


def test_a_retried_batch_keeps_its_proofs(world):
    with (
        serving(Flaky(create_gateway_app(world.gateway), failures=2)) as url,
        SignalClient(url, world.tokens["liander"], sign=liander(), retry=world.policy()) as client,
    ):
        result = client.publish([signal(n) for n in range(4)])
    assert len(result.accepted) == 4 and len(world.sleeps) == 2
    world.broker.fail_next = 2  # two signals of the next batch are re-sent on their own
    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], sign=liander(), retry=world.policy()) as client,
    ):
        again = client.publish([signal(n) for n in range(10, 14)])
    assert len(again.accepted) == 4 and again.rejected == []
    assert {parse_batch(s["batch"]).size for s in world.produced()} == {4}
    assert routed_cleanly(world)


def test_single_signatures_on_request(world):
    single = PartnerSigner(demo_private_key("liander"), demo_key_id("liander"), batch=False)
    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], sign=single) as client,
    ):
        client.publish([signal(n) for n in range(3)])
    produced = world.produced()
    assert all("batch" not in s and s["signature"].startswith("ed25519:") for s in produced)
    assert routed_cleanly(world)


def test_a_plain_sign_hook_still_signs_one_at_a_time(world):
    seen: list[str] = []

    def sign(envelope: dict[str, Any]) -> dict[str, Any]:
        seen.append(envelope["id"])
        return liander()(envelope)

    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], sign=sign, batch_size=2) as client,
    ):
        result = client.publish([signal(n) for n in range(3)])
    assert len(result.accepted) == 3 and len(seen) == 3
    assert repr(liander()) == "PartnerSigner(key_id='demo-liander', batch=True)"
