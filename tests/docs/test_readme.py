"""What the README says the two first commands need is what the Makefile does."""

from __future__ import annotations

import re

import pytest

from services.config import ROOT

pytestmark = pytest.mark.timeout(30)

README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def prerequisites(target: str) -> list[str]:
    [line] = re.findall(rf"^{re.escape(target)}:(.*)$", MAKEFILE, flags=re.M)
    return line.split()


def recipe(target: str) -> str:
    [body] = re.findall(rf"^{re.escape(target)}:.*\n((?:\t.*\n)*)", MAKEFILE, flags=re.M)
    return body


def needs_apt(target: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``target`` or what it depends on installs packages with apt."""
    if target in seen or not re.search(rf"^{re.escape(target)}:", MAKEFILE, flags=re.M):
        return False
    if "apt-get" in recipe(target):
        return True
    return any(needs_apt(p, seen | {target}) for p in prerequisites(target) if p.isidentifier())


def test_the_readme_says_which_command_installs_chromium_with_apt():
    assert needs_apt("test"), "make test installs Debian's chromium for the browser tests"
    assert not needs_apt("run")
    intro = README.split("## ", 1)[0]
    assert "`make run` needs only Python" in intro
    sentence = intro[intro.index("`make test` needs") :]
    for words in ("chromium", "apt-get", "root", "sudo"):
        assert words in sentence, f"the README should say make test needs {words}"
