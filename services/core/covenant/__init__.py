"""Covenant model, loader, checker and compiler."""
