"""The RIEC workplace: triage of what a RIEC's feeds delivered, case files, hand-over, the
joint barrier plan (issue 14). Pages live in :mod:`services.web.routes_riec`."""
