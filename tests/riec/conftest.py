"""A workplace holding riec-nh's feed (see :mod:`tests.riec.helpers`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.riec.helpers import Site, build


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    built = build(tmp_path / "riec.db")
    yield built
    built.engine.dispose()
