"""Replays ``corpus/gateway/``: request bodies and cursors that once broke the gateway.

``signals-*.json`` is posted to ``POST /v1/signals`` as liander; ``cursor-*.txt`` is sent to
``GET /v1/feed`` as ``?cursor=`` and to ``GET /v1/feed/events`` as ``Last-Event-ID``. Each
must get a documented answer — a 202 listing a problem per bad signal, or a 4xx problem with
a code and a reason — and the gateway must go on serving.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.test_gateway_fuzz import Served, check_answer, served
from tests.gateway.helpers import bearer

__all__ = ["served"]  # the module-scoped fixture, shared with the fuzz tests

CORPUS = Path(__file__).parent / "corpus" / "gateway"
pytestmark = pytest.mark.timeout(60)


def _files(pattern: str) -> list[Path]:
    return sorted(CORPUS.glob(pattern))


def test_the_gateway_corpus_is_there():
    assert _files("signals-*.json") and _files("cursor-*.txt")


@pytest.mark.parametrize("path", _files("signals-*.json"), ids=lambda p: p.name)
def test_signal_corpus_is_answered_with_a_problem_per_bad_signal(served: Served, path: Path):
    answer = served.post("liander", path.read_bytes())
    body = check_answer(answer)
    problems = body["rejected"] if answer.status_code == 202 else [body]
    assert problems, "every corpus body holds at least one bad signal"
    assert all(p["status"] < 500 for p in problems)
    served.still_serving()


@pytest.mark.parametrize("path", _files("cursor-*.txt"), ids=lambda p: p.name)
def test_cursor_corpus_is_refused_as_a_cursor(served: Served, path: Path):
    cursor = path.read_text(encoding="ascii").strip()
    token = bearer(served.tokens["riec-nh"])
    for answer in (
        served.http.get("/v1/feed", params={"cursor": cursor}, headers=token),
        served.http.get("/v1/feed/events", headers={**token, "Last-Event-ID": cursor}),
    ):
        assert answer.status_code == 400, answer.text
        assert check_answer(answer)["code"] == "invalid_cursor"
    served.still_serving()
