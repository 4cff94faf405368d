"""A small Python client for the Schakel gateway, for partners and recipients.

:class:`~services.client.publish.SignalClient` publishes signals in batches, signs each with a
hook you pass in, and retries with exponential backoff and jitter on 429, 5xx and connection
errors — re-sending the same signal ids, which the gateway answers idempotently.
:class:`~services.client.feed.FeedClient` pages through a recipient's feed, long-polling.
See docs/gateway.md.
"""

from services.client.errors import ClientError
from services.client.feed import FeedClient, FeedPage
from services.client.publish import PublishResult, SignalClient
from services.client.retry import RetryPolicy

__all__ = ["ClientError", "FeedClient", "FeedPage", "PublishResult", "RetryPolicy", "SignalClient"]
