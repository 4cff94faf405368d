"""The HTTPS gateway: ``POST /v1/signals`` for partners and ``GET /v1/feed`` for recipients.

A thin FastAPI shell around the core's envelope and signal checks (the same code the router
runs), with per-partner API tokens stored only as hashes, per-principal rate limits, an
idempotency record of accepted signal ids, and a producer and feed reader passed in (Kafka in
production, :mod:`services.gateway.testing` in tests). See docs/gateway.md.
"""
