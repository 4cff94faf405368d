"""Under pytest-xdist, the slow files start first (a pytest plugin).

``make test`` runs ``pytest -n N --dist loadfile --no-loadscope-reorder``: each test file runs
whole on one worker (module fixtures such as a started hub are built once), and the files are
handed out in collection order as workers become free. A long file handed out last would run
alone at the end while the other workers idle, so in an xdist worker the files are ordered

1. those with a test marked ``slow`` (the chaos soak, real ``schakel up`` runs), the ones
   allowing a test more time (a longer ``timeout`` mark: the soak, the hub restarts) first;
2. those using a broker, PostgreSQL or Chromium (marked ``kafka``/``postgres``/``browser``);
3. the rest,

keeping the order of the files otherwise and of the tests within each file. Every
worker sorts the same way (xdist checks that they collected the same order). A run without
xdist keeps pytest's own order.
"""

from __future__ import annotations

import pytest

_SERVICE_MARKS = ("kafka", "postgres", "browser")


def rank(item: pytest.Item) -> tuple[int, float]:
    """(0, -timeout) for a slow test, (1, 0) for one needing a real service, (2, 0) else."""
    if item.get_closest_marker("slow") is not None:
        timeout = item.get_closest_marker("timeout")
        return 0, -float(timeout.args[0]) if timeout is not None and timeout.args else 0.0
    if any(item.get_closest_marker(mark) is not None for mark in _SERVICE_MARKS):
        return 1, 0.0
    return 2, 0.0


@pytest.hookimpl(trylast=True)  # after the fixtures' hooks marked kafka/postgres tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    file_rank: dict[str, tuple[int, float]] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        file_rank[path] = min(file_rank.get(path, (2, 0.0)), rank(item))
    items.sort(key=lambda item: file_rank[item.nodeid.split("::", 1)[0]])
