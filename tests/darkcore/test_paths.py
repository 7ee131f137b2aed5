"""darkcore.paths: member names in, stored install paths (or a warning) out."""

from __future__ import annotations

import pytest

from darkcore.paths import PathRejected, normalize_member_path


@pytest.mark.parametrize(("name", "path"), [
    ("./usr/bin/foo", "/usr/bin/foo"),
    ("usr/bin/foo", "/usr/bin/foo"),
    ("/usr/bin/foo", "/usr/bin/foo"),
    (".//usr//lib64/./libfoo.so.1", "/usr/lib64/libfoo.so.1"),
    ("./usr/lib/debug/.build-id/ab/cdef.debug", "/usr/lib/debug/.build-id/ab/cdef.debug"),
    ("./usr/share/dir/", "/usr/share/dir"),
    ("./usr/bin/..foo", "/usr/bin/..foo"),  # a name that starts with dots is still a name
    ("./usr/bin/with space", "/usr/bin/with space"),
    (b"./usr/bin/caf\xc3\xa9", "/usr/bin/caf\u00e9"),
    (b"./usr/bin/bad\xff", "/usr/bin/bad\\xff"),  # undecodable: a readable, storable escape
    ("./usr/bin/bad\udcff", "/usr/bin/bad\\xff"),  # tarfile's surrogate escape, the same
])
def test_normalised(name: str | bytes, path: str) -> None:
    assert normalize_member_path(name) == path


@pytest.mark.parametrize(("name", "message"), [
    ("../../etc/x", "rejected hostile path '../../etc/x' ('..' component)"),
    ("./usr/../../etc/x", "rejected hostile path './usr/../../etc/x' ('..' component)"),
    ("/usr/lib/../lib64/x", "('..' component)"),  # not escaping, but never stored as given
    ("..", "('..' component)"),
    ("./usr/bin/x\0.so", "(NUL byte)"),
    (b"./usr/\0", "(NUL byte)"),
    ("./", "(no file name)"),
    ("", "(no file name)"),
    ("./" + "a/" * 3000, "characters)"),
])
def test_rejected(name: str | bytes, message: str) -> None:
    with pytest.raises(PathRejected) as info:
        normalize_member_path(name)
    assert message in str(info.value)
    assert str(info.value).startswith("rejected")


def test_rejection_is_a_value_error_not_an_import_failure() -> None:
    """A hostile member costs a warning, not the package."""
    from darkcore.errors import PackageError

    assert issubclass(PathRejected, ValueError)
    assert not issubclass(PathRejected, PackageError)
