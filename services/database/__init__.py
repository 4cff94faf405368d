"""The hub's database, which every service that keeps state depends on: how to connect
(:mod:`.engine`), every service's tables (:mod:`.tables`) and the Alembic migrations that make
them (:mod:`.migrations`, run by :mod:`.migrate`). Nothing here imports a service."""
