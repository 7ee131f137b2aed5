"""Fuzzing the request parsers: build-id, build-id list and prefix converters and the batch
body parser. Whatever a client sends, the answer is a normalised value or an ApiError (a
JSON 4xx), never another exception (a 500). Short derandomized run here; the long run with
DARKSERVER_FUZZ_EXAMPLES (docs/FUZZING.md)."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from darkserver.lookup.answers import batch_ids
from darkserver.lookup.converters import (
    normalize_build_id,
    normalize_build_id_list,
    normalize_prefix,
)
from darkserver.lookup.errors import ApiError
from tests.fuzz.harness import fuzz_settings

HEX = re.compile(r"[0-9a-f]*")
ids = st.one_of(st.text(max_size=140), st.text("0123456789abcdefABCDEF", max_size=140),
                st.binary(max_size=70).map(bytes.hex))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ids,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)


def answer_or_api_error(parse, value):  # type: ignore[no-untyped-def]
    try:
        return parse(value)
    except ApiError as exc:
        assert exc.status in (400, 413) and str(exc)
        return None


@fuzz_settings(200)
@given(ids)
def test_fuzz_build_id_converters(value: str) -> None:
    for parse in (normalize_build_id, normalize_prefix):
        got = answer_or_api_error(parse, value)
        assert got is None or (HEX.fullmatch(got) and got == value.lower())
    listed = answer_or_api_error(normalize_build_id_list, value)
    assert listed is None or all(HEX.fullmatch(i) for i in listed)


bodies = st.one_of(
    st.binary(max_size=512),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(ids, max_size=20).map(lambda v: json.dumps({"buildids": v}).encode()),
    st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 5000).map(lambda depth: b'{"buildids":' + b"[" * depth + b"]" * depth + b"}"),
)


@fuzz_settings(200)
@given(bodies)
def test_fuzz_batch_body(body: bytes) -> None:
    got = answer_or_api_error(batch_ids, body)
    assert got is None or all(HEX.fullmatch(i) for i in got)
