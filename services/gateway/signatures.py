"""The early signature check: refuse a badly signed signal at the door with its reason code.

The gateway verifies each signal with the function the router runs
(:func:`services.core.signing.verify_envelope`, called by
:func:`services.core.pipeline.check_signature`), against the partners' keys registered in the
covenants in force on the Dutch calendar day — the :class:`~services.core.covenant.keyring.
Keyring` the compiled policy holds. A refusal names the reason (``unsigned``,
``malformed_signature``, ``unknown_key``, ``covenant_ended``, ``foreign_key``,
``bad_signature``, ``bad_batch_root``, ``bad_inclusion_path``, ``key_not_yet_valid``,
``key_expired``); a signed batch's root is verified once (the keyring remembers it, across
requests) and each signal's path on its own. The router verifies again: this
check saves a round trip through the broker and the dead-letter topic, it does not replace
the router's.

:class:`CovenantKeys` builds the keyring from the covenant files exactly as
:func:`~services.core.covenant.compiler.compile_policy` does, without the pseudonym keys the
gateway has no use for (TEST keys only in demo mode, as there), and rebuilds it when the files change (a set that no longer checks
clean is reported and the keyring in force is kept, as the router keeps its policy).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from services.config import check_covenants
from services.core.covenant.keyring import Keyring
from services.core.covenant.loader import covenant_files
from services.core.policy import LOCAL_TIME
from services.core.signing import verify_envelope
from services.gateway.errors import GatewayError

log = logging.getLogger("schakel.gateway")

KeySource = Callable[[], Keyring]
"""The keyring in force now (cheap to call per request)."""

RECHECK_S = 10.0
"""Seconds between looks at the covenant files' modification times."""


def verify(
    envelope: Mapping[str, Any], keys: Keyring, now: datetime, *, signal_id: str | None
) -> None:
    """Check the signature of ``envelope`` as sent (raises SignalRejected with the reason)."""
    verify_envelope(envelope, keys, now.astimezone(LOCAL_TIME).date(), signal_id=signal_id)


class CovenantKeys:
    """The keyring of the covenant files at ``paths``, rebuilt when they change."""

    def __init__(
        self,
        paths: Sequence[Path],
        schemas: Path,
        reference: Path,
        *,
        today: Callable[[], date],
        monotonic: Callable[[], float] = time.monotonic,
        demo: bool = False,
    ) -> None:
        self._paths = list(paths)
        self._demo = demo
        self._schemas = schemas
        self._reference = reference
        self._today = today
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._fingerprint = self._files()
        keyring = self._load()
        if keyring is None:
            raise GatewayError(
                "the covenants have errors, so the gateway cannot check signatures; run "
                "`schakel covenant check` and fix them"
            )
        self._keyring = keyring
        self._looked = monotonic()

    def __call__(self) -> Keyring:
        if self._monotonic() - self._looked >= RECHECK_S:
            self._maybe_reload()
        return self._keyring

    def _maybe_reload(self) -> None:
        with self._lock:
            self._looked = self._monotonic()
            fingerprint = self._files()
            if fingerprint == self._fingerprint:
                return
            self._fingerprint = fingerprint
            keyring = self._load()
            if keyring is None:
                log.error("covenant change refused by the check; the gateway keeps its keys")
                return
            self._keyring = keyring
            log.info("partner keys reloaded from the covenants")

    def _load(self) -> Keyring | None:
        _, _, checked = check_covenants(
            self._paths, self._schemas, self._reference, today=self._today(), demo=self._demo
        )
        if not checked.ok:
            return None
        return Keyring((item.covenant for item in checked.covenants), test_keys=checked.demo)

    def _files(self) -> tuple[tuple[str, int, int], ...]:
        entries = []
        for file in covenant_files(self._paths):
            try:
                stat = file.stat()
            except OSError:
                continue
            entries.append((str(file), stat.st_mtime_ns, stat.st_size))
        return tuple(entries)
