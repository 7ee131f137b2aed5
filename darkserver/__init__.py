"""Darkserver: build-id lookup service."""

__version__ = "2.0.0"
