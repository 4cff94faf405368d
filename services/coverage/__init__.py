"""Coverage (NH Drugsalert): the durable counts, ingesting routed signals into them, and the
audited aggregate release to a campaign team. The logic is in :mod:`services.core.coverage`."""
