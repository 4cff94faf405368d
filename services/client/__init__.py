"""A small Python client for the Schakel gateway, for partners and recipients.

:class:`~services.client.publish.SignalClient` publishes signals in batches, signs them with a
hook you pass in (:class:`~services.client.signer.PartnerSigner`: one signature per batch by
default), and retries with exponential backoff and jitter on 429, 5xx and connection
errors — re-sending the same signal ids, which the gateway answers idempotently.
:class:`~services.client.feed.FeedClient` pages through a recipient's feed, long-polling.
See docs/gateway.md.
"""

from services.client.errors import ClientError
from services.client.feed import FeedClient, FeedPage
from services.client.publish import PublishResult, SignalClient
from services.client.retry import RetryPolicy
from services.client.signer import BatchSigner, PartnerSigner

__all__ = [
    "BatchSigner",
    "ClientError",
    "FeedClient",
    "FeedPage",
    "PartnerSigner",
    "PublishResult",
    "RetryPolicy",
    "SignalClient",
]
