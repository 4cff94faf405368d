"""The privacy officer's workplace: a server-rendered web UI over the audit log.

:func:`services.web.app.create_web_app` builds the FastAPI application from its dependencies;
:func:`services.web.serve.serve` runs it with uvicorn.
"""
