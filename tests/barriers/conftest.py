"""Fixtures of the barrier page tests: the web app over demo audit records."""

from __future__ import annotations

from tests.coverage.webhub import signed_in, web_hub

__all__ = ["signed_in", "web_hub"]
