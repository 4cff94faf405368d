"""Publishing signals through the gateway: sign, batch, retry, re-send idempotently.

The envelopes are sent in batches of ``batch_size``, signed on the way by the ``sign`` hook: a
:class:`~services.client.signer.BatchSigner` (such as
:class:`~services.client.signer.PartnerSigner`, the partner's Ed25519 key) signs each batch as
one (one root signature, an inclusion path per signal), any ``sign(envelope) -> envelope``
signs each signal on its own. A batch is
retried whole on connection errors, 429 and 5xx (:mod:`services.client.retry`); signals the
gateway refused only for the moment (broker unavailable, being accepted by another request)
are re-sent on their own with the same ids. The gateway remembers accepted ids, so a re-send
never produces a signal twice. Signals refused for good (invalid, wrong source, id re-used)
come back in :attr:`PublishResult.rejected` as problem details with their index in the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from services.client.errors import ClientError
from services.client.retry import RetryPolicy, send
from services.client.signer import BatchSigner, Envelope, Signer

_RETRY_LATER = frozenset({"broker_unavailable", "in_progress"})


@dataclass
class PublishResult:
    accepted: list[str] = field(default_factory=list)
    """Ids of the signals the broker acknowledged (re-sends of accepted ones included)."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """One RFC 9457 problem per refused signal; ``index`` is its position in the input."""


class SignalClient:
    """A partner's connection to the gateway at ``base_url`` with its API ``token``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        sign: BatchSigner | Signer | None = None,
        batch_size: int = 100,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._sign = sign
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def publish(self, envelopes: Iterable[Mapping[str, Any]]) -> PublishResult:
        """Send every envelope; what was accepted and what was refused (and why)."""
        result = PublishResult()
        source = iter(envelopes)
        offset = 0
        while chunk := list(islice(source, self._batch_size)):
            self._publish_batch(self._prepare(chunk), offset, result)
            offset += len(chunk)
        return result

    def _prepare(self, chunk: list[Mapping[str, Any]]) -> list[Envelope]:
        """The batch as sent: signed together by a batch signer, else one by one. A re-send
        of refused-for-now signals carries the same signatures and paths."""
        prepared = [dict(envelope) for envelope in chunk]
        if isinstance(self._sign, BatchSigner):
            return self._sign.sign_batch(prepared)
        if self._sign is not None:
            return [self._sign(envelope) for envelope in prepared]
        return prepared

    def _publish_batch(self, batch: list[Envelope], offset: int, result: PublishResult) -> None:
        pending = list(range(len(batch)))
        last = self._retry.attempts - 1
        for attempt in range(self._retry.attempts):
            accepted, problems = self._post([batch[i] for i in pending])
            result.accepted.extend(accepted)
            again: list[int] = []
            for problem in problems:
                index = pending[int(problem.get("index", 0))]
                if problem.get("code") in _RETRY_LATER and attempt < last:
                    again.append(index)
                else:
                    result.rejected.append({**problem, "index": offset + index})
            if not again:
                return
            pending = again
            self._retry.sleep(self._retry.delay(attempt))

    def _post(self, envelopes: list[Envelope]) -> tuple[list[str], list[dict[str, Any]]]:
        response = send(
            self._http,
            self._retry,
            "POST",
            "/v1/signals",
            content=orjson.dumps(envelopes),
            headers={"Content-Type": "application/json"},
        )
        body = _json(response)
        if response.status_code == 202:
            return list(body.get("accepted", [])), list(body.get("rejected", []))
        if body.get("code") == "batch_rejected" and response.status_code < 500:
            return [], list(body.get("errors", []))
        raise ClientError(
            f"the gateway refused the request: HTTP {response.status_code}: "
            f"{body.get('detail', response.reason_phrase)}",
            status=response.status_code,
            problem=body,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
