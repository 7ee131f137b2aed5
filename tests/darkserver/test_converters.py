"""Identifier normalisation and the prefix range, without HTTP."""

from __future__ import annotations

import pytest

from darkserver.lookup import queries
from darkserver.lookup.converters import (
    BuildIdListConverter,
    NvraConverter,
    normalize_build_id,
    normalize_build_id_list,
    normalize_prefix,
)
from darkserver.lookup.errors import BadBuildId, Invalid


@pytest.mark.parametrize(
    ("given", "expected"),
    [("DEADBEEF", "deadbeef"), ("a" * 128, "a" * 128), ("0123456789AbCdEf", "0123456789abcdef")],
)
def test_normalize_build_id(given, expected):
    assert normalize_build_id(given) == expected


@pytest.mark.parametrize(
    "bad", ["", "deadbee", "deadbeef0", "a" * 130, "deadbeeg", " deadbeef", "0xdeadbeef"]
)
def test_normalize_build_id_rejects(bad):
    with pytest.raises(BadBuildId) as info:
        normalize_build_id(bad)
    assert info.value.status == 400
    assert info.value.extra == {"buildid": bad}


def test_list_converter_normalises_and_deduplicates():
    assert BuildIdListConverter().to_python("AABBCCDD,11223344,aabbccdd") == [
        "aabbccdd",
        "11223344",
    ]
    assert BuildIdListConverter().to_url(["aabbccdd", "11223344"]) == "aabbccdd,11223344"


@pytest.mark.parametrize("bad", ["aabbccdd,", ",aabbccdd", "aabbccdd,,11223344"])
def test_list_converter_rejects_empty_members(bad):
    with pytest.raises(BadBuildId):
        normalize_build_id_list(bad)
    # While a URL is resolved the converter raises nothing: the view answers after its method
    # check (a wrong method is a 405 whatever the id).
    rejected = BuildIdListConverter().to_python(bad)
    assert isinstance(rejected, Invalid) and isinstance(rejected.error, BadBuildId)


def test_prefix_accepts_odd_lengths():
    assert normalize_prefix("0123456789ABCDEF0") == "0123456789abcdef0"
    with pytest.raises(BadBuildId):
        normalize_prefix("0123456789abcde")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("apr-1.4.5-1.fc16.x86_64.rpm", "apr-1.4.5-1.fc16.x86_64"),
        ("apr-1.4.5-1.fc16.x86_64", "apr-1.4.5-1.fc16.x86_64"),
        ("hello_2.10-3_amd64.deb", "hello_2.10-3_amd64"),
    ],
)
def test_nvra_converter_drops_the_file_suffix(given, expected):
    assert NvraConverter().to_python(given) == expected


@pytest.mark.parametrize(
    ("prefix", "low", "high"),
    [
        ("0123456789abcdef", "0123456789abcdef", "0123456789abcdf0"),
        ("0123456789abcdef0", "0123456789abcdef00", "0123456789abcdef10"),
        ("00000000000000ff", "00000000000000ff", "0000000000000100"),
        ("0000000000000000f", "0000000000000000f0", "000000000000000100"),
        ("ffffffffffffffff", "ffffffffffffffff", None),
        ("fffffffffffffffff", "fffffffffffffffff0", None),
    ],
)
def test_prefix_range(prefix, low, high):
    got_low, got_high = queries.prefix_range(prefix)
    assert got_low.hex() == low
    assert (got_high.hex() if got_high is not None else None) == high
