"""Root signatures already checked: a bounded memo of Ed25519 results for signed batches.

The signals of a signed batch (:mod:`services.core.batch_signing`) share one root signature;
the hub verifies it once and remembers the result, so the other signals of the batch cost
only their path's SHA-256.

What is remembered cannot be poisoned:

* an entry is keyed by the whole question — the key's 32 public bytes (not only its id, so a
  root verified under one partner's key says nothing about another's), the signed statement
  (batch size and root) and the 64-byte signature — and holds the answer Ed25519 gave to
  exactly that question, which no other question shares (verification is deterministic);
* only answers actually computed are stored, after the verification returned: a root is
  never taken as good because it was seen, claimed or is being verified;
* good and bad answers live in separate bounded tables (least recently used first out). A
  flood of distinct forged roots costs one verification each (as many forged single
  signatures would), fills only the table of failures and never pushes a verified root out;
  the same forged root sent again costs nothing.

Key validity (valid_from/until, covenants in force) is not remembered: it is checked for every
signal on its own day, after this answer (:func:`services.core.signing.verify_envelope`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

GOOD_CAPACITY = 4096
"""Verified roots kept: a router sees a few batches per partner at a time."""
BAD_CAPACITY = 1024
"""Failed roots kept."""

_Question = tuple[bytes, bytes, bytes]


class VerifiedRoots:
    """The memo; safe to share between threads (the gateway checks requests in a pool)."""

    def __init__(self, *, good: int = GOOD_CAPACITY, bad: int = BAD_CAPACITY) -> None:
        if good < 1 or bad < 1:
            raise ValueError("the tables of verified and failed roots need room for one")
        self._good: OrderedDict[_Question, None] = OrderedDict()
        self._bad: OrderedDict[_Question, None] = OrderedDict()
        self._room = {True: good, False: bad}
        self._lock = threading.Lock()
        self.verifications = 0
        """Ed25519 verifications made (the tests and the benchmark count them)."""

    def check(
        self, public: bytes, statement: bytes, signature: bytes, verify: Callable[[], bool]
    ) -> bool:
        """Whether ``signature`` is ``public``'s valid signature of ``statement``: remembered,
        or ``verify()`` (which must answer exactly that) called and its answer remembered."""
        question = (public, statement, signature)
        with self._lock:
            for answer, table in ((True, self._good), (False, self._bad)):
                if question in table:
                    table.move_to_end(question)
                    return answer
        answer = verify()  # outside the lock; two threads may both verify a new root
        with self._lock:
            self.verifications += 1
            table = self._good if answer else self._bad
            table[question] = None
            table.move_to_end(question)
            while len(table) > self._room[answer]:
                table.popitem(last=False)
        return answer

    def remembered(self, *, good: bool) -> int:
        """How many good (or bad) answers are remembered."""
        return len(self._good if good else self._bad)
