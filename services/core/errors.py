"""The exception hierarchy of the core.

Every error the core raises derives from :class:`SchakelError`. Messages name the thing that is
wrong and how to fix it, and never contain a raw identifier value.
"""

from __future__ import annotations


class SchakelError(Exception):
    """Root of every error Schakel raises on purpose."""


class SignalRejected(SchakelError):  # noqa: N818 - a rejection, not a programming error
    """A signal cannot be processed; it goes to the dead-letter topic with ``code`` and message.

    ``code`` is a short, stable machine-readable reason (used in metrics and audit), the
    message is for people. Neither contains a raw identifier.
    """

    def __init__(self, code: str, message: str, *, signal_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.signal_id = signal_id

    def __str__(self) -> str:
        prefix = f"signal {self.signal_id}: " if self.signal_id else ""
        return f"{prefix}{self.message} [{self.code}]"


class IdentifierError(SchakelError, ValueError):
    """An identifier value is not valid for its kind. The message never repeats the value."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"invalid {kind}: {reason}")
        self.kind = kind
        self.reason = reason


class ConditionError(SchakelError):
    """A covenant condition does not compile (``column`` is 1-based within the expression)."""

    def __init__(self, message: str, *, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class ConditionEvaluationError(SchakelError):
    """A compiled condition could not be evaluated for one signal (e.g. a missing field)."""


class CovenantError(SchakelError):
    """Covenant files have problems; ``problems`` lists each with file, line and a fix hint."""

    def __init__(self, problems: list[object]) -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} covenant problem(s):\n{lines}")


class KeyStoreError(SchakelError):
    """The key store is missing, unreadable or lacks a key. Never carries key material."""
