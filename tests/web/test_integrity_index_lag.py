"""The integrity page and its JSON API say how far the audit index is behind the audit log, or
that this is unknown and why — never a made-up 0."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.web.index_lag import NO_KAFKA, IndexLag, behind
from tests.web.conftest import Hub, make_app, sign_in


def signed_in(hub: Hub, lag: IndexLag | None) -> TestClient:
    client = make_app(hub) if lag is None else make_app(hub, index_lag=lambda: lag)
    assert sign_in(client, "manager").status_code == 303
    return client


def test_without_kafka_settings_the_lag_is_unknown_and_the_page_says_why(hub: Hub) -> None:
    client = signed_in(hub, None)
    page = client.get("/integrity").text
    assert "is unknown: the web workplace has no Kafka settings (SCHAKEL_KAFKA_BOOTSTRAP)" in page
    index = client.get("/api/integrity").json()["index"]
    assert index == {"behind": None, "known": False, "reason": NO_KAFKA}


def test_an_index_behind_says_by_how_much_on_the_page_and_in_json(hub: Hub) -> None:
    client = signed_in(hub, IndexLag(3))
    page = client.get("/integrity").text
    assert "The audit index is 3 audit-log messages behind the audit log" in page
    assert "a verification does not cover them yet" in page
    assert client.get("/api/integrity").json()["index"] == {
        "behind": 3,
        "known": True,
        "reason": "",
    }


def test_an_index_caught_up_says_so(hub: Hub) -> None:
    client = signed_in(hub, IndexLag(0))
    page = client.get("/integrity").text
    assert "The audit index holds everything on the audit log" in page
    assert "behind the audit log:" not in page


def test_a_broker_that_does_not_answer_is_shown_as_unknown(hub: Hub) -> None:
    client = signed_in(hub, IndexLag(None, "the broker did not answer (KafkaTimeoutError)"))
    assert (
        "is unknown: the broker did not answer (KafkaTimeoutError)" in client.get("/integrity").text
    )


@pytest.mark.parametrize(
    ("ends", "committed", "want"),
    [
        ({0: 10}, {0: 10}, 0),
        ({0: 10}, {0: 7}, 3),
        ({0: 10}, {}, 10),  # the indexer never committed: everything is behind
        ({0: 10, 1: 4}, {0: 10, 1: 1}, 3),
        # a committed offset past a lost end (the topic recreated): the indexer resets to the
        # earliest offset, so all of it waits, and never a negative lag nor a false 0
        ({0: 5}, {0: 9}, 5),
    ],
)
def test_behind_counts_messages_between_committed_and_end(
    ends: dict[int, int], committed: dict[int, int], want: int
) -> None:
    assert behind(ends, committed) == want


@pytest.mark.parametrize(
    ("ends", "committed", "starts", "want"),
    [
        # retention removed offsets 0-5: an indexer that never committed starts at 6
        ({0: 10}, {}, {0: 6}, 4),
        # a committed offset below the log start: the indexer resets to the log start
        ({0: 10}, {0: 2}, {0: 6}, 4),
        ({0: 10}, {0: 8}, {0: 6}, 2),
        ({0: 10, 1: 5}, {1: 5}, {0: 9, 1: 0}, 1),
        ({0: 6}, {}, {0: 6}, 0),  # everything deleted: nothing to index
        ({0: 10}, {0: 12}, {0: 6}, 4),  # committed past the end: from the log start
    ],
)
def test_behind_counts_from_the_log_start_offset_not_from_zero(
    ends: dict[int, int], committed: dict[int, int], starts: dict[int, int], want: int
) -> None:
    assert behind(ends, committed, starts) == want
