"""Short binary columns. Django's BinaryField is a LONGBLOB on MySQL, which cannot be indexed
without a prefix; build-ids and path hashes are small, so they get VARBINARY and stay index-only."""

from __future__ import annotations

from typing import Any

from django.db import models


class ShortBinaryField(models.BinaryField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "mysql":
            return f"varbinary({self.max_length})"
        own: str | None = super().db_type(connection)
        return own

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        return None if value is None else bytes(value)
