"""Darkserver client: build-ids from ELF files and core dumps, lookups, URLs, debug files.

A thin client: it never imports Django or the web service; only build-ids leave the machine.
"""
