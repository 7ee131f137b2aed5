"""Darkserver importer: reads ELF build-ids out of rpm and deb packages into the database."""
