"""The audit indexer: reads the ``audit`` topic and is the single writer of the SQL audit index."""
