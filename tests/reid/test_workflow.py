"""The four-eyes re-identification workflow over audit records the real core made."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.core.covenant.model import Revocation
from services.core.pseudonyms import Domain, Pseudonymiser
from services.reid import store
from services.reid.model import ReidError, Request, State, UnknownRequestError
from services.reid.workflow import Reidentification
from services.web.users import User
from tests.reid.conftest import Clock, Hub
from tests.reid.helpers import canonical, delivered, everything_stored

COVENANT = "drugslocaties-nh"
RECIPIENT = "riec-nh"


def user(hub: Hub, name: str) -> User:
    found = hub.users.get(name)
    assert found is not None
    return found


def ean_record(hub: Hub) -> dict[str, Any]:
    return delivered(hub.records, RECIPIENT, COVENANT, "ean", reidentify=True)


def file(hub: Hub, workflow: Reidentification, *, by: str = "riec-officer") -> Request:
    record = ean_record(hub)
    return workflow.request(
        user(hub, by),
        recipient=RECIPIENT,
        covenant_id=COVENANT,
        pseudonym=record["pseudonyms"]["ean"],
        purpose="verify a tampered meter before a site visit",
        case_ref="RIEC-2026-0042",
    )


def test_full_flow_reveals_the_value_once(hub: Hub, workflow: Reidentification) -> None:
    record = ean_record(hub)
    expected = canonical(hub.signals[record["signal_id"]], "ean", "ean")
    filed = file(hub, workflow)
    assert filed.state is State.REQUESTED
    assert filed.kind == "ean"
    assert filed.field == "ean"
    assert filed.source_record == record["record_id"]

    approved = workflow.approve(filed.id, user(hub, "drugs-officer"))
    assert approved.state is State.APPROVED
    assert approved.decided_by == "drugs-officer"

    revealed = workflow.reveal(filed.id, user(hub, "riec-officer"))
    assert (revealed.kind, revealed.value) == ("ean", expected)
    assert expected not in repr(revealed)
    assert workflow.get(filed.id).state is State.REVEALED

    with pytest.raises(ReidError, match="only once") as refused:
        workflow.reveal(filed.id, user(hub, "riec-officer"))
    assert expected not in str(refused.value)
    steps = [step for step, *_ in store.events(hub.engine, filed.id)]
    assert steps == ["request", "approve", "reveal"]


def test_every_step_is_audited_without_the_value(hub: Hub, workflow: Reidentification) -> None:
    record = ean_record(hub)
    expected = canonical(hub.signals[record["signal_id"]], "ean", "ean")
    filed = file(hub, workflow)
    workflow.approve(filed.id, user(hub, "admin"))
    workflow.reveal(filed.id, user(hub, "riec-officer"))
    internal = record["subjects"]["ean"]
    for step, actor in (
        ("request", "riec-officer"),
        ("approve", "admin"),
        ("reveal", "riec-officer"),
    ):
        body = hub.store.get(f"reid-{filed.id}-{step}")
        assert body is not None
        assert body["action"] == f"reidentify-{step}"
        assert body["actor"] == actor
        assert body["object"] == "ean"
        assert body["recipient"] == RECIPIENT
        assert body["covenant"]["id"] == COVENANT
        assert body["subjects"] == {"ean": internal}
        assert body["request"]["case"] == "RIEC-2026-0042"
    # the subject's access-request view finds the re-identification steps too
    about = [b["record_id"] for _, b in hub.store.records_for_subject(internal)]
    assert f"reid-{filed.id}-reveal" in about
    assert expected not in everything_stored(hub.engine)


def test_self_approval_is_refused(hub: Hub, workflow: Reidentification) -> None:
    filed = file(hub, workflow, by="admin")
    with pytest.raises(ReidError, match="four eyes"):
        workflow.approve(filed.id, user(hub, "admin"))
    with pytest.raises(ReidError, match="four eyes"):
        workflow.reject(filed.id, user(hub, "admin"), "no")
    assert workflow.get(filed.id).state is State.REQUESTED


@pytest.mark.parametrize("approver", ["manager", "other-officer", "riec-officer"])
def test_approver_needs_a_role_for_the_covenant(
    hub: Hub, workflow: Reidentification, approver: str
) -> None:
    filed = file(hub, workflow, by="admin")
    with pytest.raises(ReidError, match="may not approve"):
        workflow.approve(filed.id, user(hub, approver))


@pytest.mark.parametrize("requester", ["manager", "other-officer"])
def test_requester_must_act_for_the_recipient(
    hub: Hub, workflow: Reidentification, requester: str
) -> None:
    with pytest.raises(ReidError, match="may not request"):
        file(hub, workflow, by=requester)


def test_only_the_requester_sees_the_value(hub: Hub, workflow: Reidentification) -> None:
    filed = file(hub, workflow)
    workflow.approve(filed.id, user(hub, "drugs-officer"))
    with pytest.raises(ReidError, match="only riec-officer"):
        workflow.reveal(filed.id, user(hub, "drugs-officer"))
    assert workflow.get(filed.id).state is State.APPROVED


def test_unapproved_and_rejected_requests_reveal_nothing(
    hub: Hub, workflow: Reidentification
) -> None:
    filed = file(hub, workflow)
    with pytest.raises(ReidError, match="not approved"):
        workflow.reveal(filed.id, user(hub, "riec-officer"))
    rejected = workflow.reject(filed.id, user(hub, "drugs-officer"), "no case file attached")
    assert rejected.state is State.REJECTED
    assert rejected.reason == "no case file attached"
    with pytest.raises(ReidError, match="rejected, not approved"):
        workflow.reveal(filed.id, user(hub, "riec-officer"))
    with pytest.raises(ReidError, match="decided once"):
        workflow.approve(filed.id, user(hub, "admin"))
    body = hub.store.get(f"reid-{filed.id}-reject")
    assert body is not None
    assert body["reason"] == "no case file attached"


def test_pseudonym_from_a_rule_without_reidentification_is_refused(
    hub: Hub, workflow: Reidentification
) -> None:
    record = delivered(hub.records, "politie-nh", COVENANT, "address", reidentify=False)
    with pytest.raises(ReidError, match="without `reidentify: on-request`"):
        workflow.request(
            user(hub, "admin"),
            recipient="politie-nh",
            covenant_id=COVENANT,
            pseudonym=record["pseudonyms"]["address"],
            purpose="p",
            case_ref="c",
        )


def test_pseudonym_never_delivered_is_refused(hub: Hub, workflow: Reidentification) -> None:
    made = Pseudonymiser(hub.keys).pseudonym(
        Domain(COVENANT, RECIPIENT, reversible=True), "ean", "871687140000000001"
    )
    with pytest.raises(ReidError, match="no delivery of this pseudonym"):
        workflow.request(
            user(hub, "admin"),
            recipient=RECIPIENT,
            covenant_id=COVENANT,
            pseudonym=made,
            purpose="p",
            case_ref="c",
        )


def test_pseudonym_of_another_recipient_is_refused(hub: Hub, workflow: Reidentification) -> None:
    record = ean_record(hub)
    with pytest.raises(ReidError, match="no delivery"):
        workflow.request(
            user(hub, "admin"),
            recipient="politie-nh",
            covenant_id=COVENANT,
            pseudonym=record["pseudonyms"]["ean"],
            purpose="p",
            case_ref="c",
        )


@pytest.mark.parametrize("pseudonym", ["irreversible", "garbage"])
def test_one_way_or_malformed_pseudonym_is_refused(
    hub: Hub, workflow: Reidentification, pseudonym: str
) -> None:
    if pseudonym == "irreversible":
        pseudonym = Pseudonymiser(hub.keys).pseudonym(
            Domain(COVENANT, RECIPIENT, reversible=False), "ean", "871687140000000001"
        )
        match = "one-way"
    else:
        match = "not a pseudonym"
    with pytest.raises(ReidError, match=match):
        workflow.request(
            user(hub, "admin"),
            recipient=RECIPIENT,
            covenant_id=COVENANT,
            pseudonym=pseudonym,
            purpose="p",
            case_ref="c",
        )


def test_covenant_not_in_force_is_refused(
    hub: Hub, clock: Clock, workflow: Reidentification
) -> None:
    record = delivered(hub.records, RECIPIENT, "nh-drugsalert", "address", reidentify=True)
    clock.advance(timedelta(days=365 * 20))
    with pytest.raises(ReidError, match="not in force"):
        workflow.request(
            user(hub, "admin"),
            recipient=RECIPIENT,
            covenant_id="nh-drugsalert",
            pseudonym=record["pseudonyms"]["address"],
            purpose="p",
            case_ref="c",
        )


def test_requests_expire(hub: Hub, clock: Clock, workflow: Reidentification) -> None:
    unapproved = file(hub, workflow)
    approved = file(hub, workflow)
    workflow.approve(approved.id, user(hub, "drugs-officer"))
    clock.advance(timedelta(hours=24))
    assert workflow.get(unapproved.id).status(clock()) == "expired"
    with pytest.raises(ReidError, match="expired"):
        workflow.approve(unapproved.id, user(hub, "drugs-officer"))
    with pytest.raises(ReidError, match="expired"):
        workflow.reveal(approved.id, user(hub, "riec-officer"))


def test_empty_purpose_and_unknown_request_are_refused(
    hub: Hub, workflow: Reidentification
) -> None:
    record = ean_record(hub)
    with pytest.raises(ReidError, match="purpose"):
        workflow.request(
            user(hub, "admin"),
            recipient=RECIPIENT,
            covenant_id=COVENANT,
            pseudonym=record["pseudonyms"]["ean"],
            purpose="  ",
            case_ref="c",
        )
    with pytest.raises(UnknownRequestError, match="schakel reid list"):
        workflow.get("nope")


def test_covenant_revoked_after_approval_reveals_nothing(
    hub: Hub, clock: Clock, workflow: Reidentification
) -> None:
    filed = file(hub, workflow)
    workflow.approve(filed.id, user(hub, "drugs-officer"))
    revocation = Revocation.model_validate({"date": clock().date(), "reason": "ended early"})
    revoked = [
        c.model_copy(update={"revoked": revocation}) if c.covenant == COVENANT else c
        for c in hub.covenants
    ]
    later = Reidentification(hub.engine, hub.store, Pseudonymiser(hub.keys), revoked, clock=clock)
    with pytest.raises(ReidError, match="not in force"):
        later.reveal(filed.id, user(hub, "riec-officer"))
    assert workflow.get(filed.id).state is State.APPROVED
