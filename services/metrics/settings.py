"""Where a service serves ``/metrics``, ``/healthz`` and ``/readyz``; read from the environment.

=================================  ===========================================================
``SCHAKEL_METRICS_PORT``           port of the metrics and health server of a router,
                                   stacking or coverage worker (unset or 0: not served)
``SCHAKEL_METRICS_HOST``           address it binds (default ``127.0.0.1``; ``0.0.0.0`` only
                                   inside a container, where Prometheus scrapes from outside)
``SCHAKEL_AUDIT_VERIFY_EVERY_S``   seconds between audit verifications run for the metrics by
                                   the web workplace (default 900; 0: never)
=================================  ===========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from services.metrics.errors import MetricsError

ENV_PORT = "SCHAKEL_METRICS_PORT"
ENV_HOST = "SCHAKEL_METRICS_HOST"
ENV_VERIFY_EVERY = "SCHAKEL_AUDIT_VERIFY_EVERY_S"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_VERIFY_EVERY_S = 900.0
_MAX_PORT = 65535


@dataclass(frozen=True)
class MetricsSettings:
    host: str = DEFAULT_HOST
    port: int | None = None
    verify_every_s: float = DEFAULT_VERIFY_EVERY_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MetricsSettings:
        env = os.environ if environ is None else environ
        raw_port = env.get(ENV_PORT, "").strip()
        if raw_port and (
            not (raw_port.isascii() and raw_port.isdigit()) or int(raw_port) > _MAX_PORT
        ):
            raise MetricsError(f"{ENV_PORT}={raw_port!r} is not a port; use 1-65535, or 0 for off")
        raw_every = env.get(ENV_VERIFY_EVERY, "").strip()
        try:
            every = float(raw_every) if raw_every else DEFAULT_VERIFY_EVERY_S
        except ValueError:
            raise MetricsError(
                f"{ENV_VERIFY_EVERY}={raw_every!r} is not a number of seconds; e.g. 900, or 0 "
                "for never"
            ) from None
        if every < 0:
            raise MetricsError(f"{ENV_VERIFY_EVERY} must not be negative; use 0 for never")
        return cls(
            host=env.get(ENV_HOST, "").strip() or DEFAULT_HOST,
            port=(int(raw_port) or None) if raw_port else None,
            verify_every_s=every,
        )
