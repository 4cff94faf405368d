"""Offline replay: run a file of signals through the policy the router uses, into files."""
