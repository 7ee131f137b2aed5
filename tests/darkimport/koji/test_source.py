"""Talking to Koji with the real koji library: a test hub over real XML-RPC/HTTP, real rpms."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkcore.errors import FormatError, TruncatedError
from darkimport.koji import conf as kojiconf
from darkimport.koji.source import (
    BuildNotFound,
    BuildSkipped,
    DownloadError,
    KojiError,
    KojiSource,
    RetryPolicy,
    SigMD5,
    VerificationError,
    sigmd5_of,
)
from tests.kojihub import KojiHub, cached_rpms, rpm_query

FAST = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, timeout=10)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[KojiHub]:
    hub = KojiHub(tmp_path / "koji")
    hub.add_build(cached_rpms("demo"))
    hub.add_build(cached_rpms("failedbuild"), state="FAILED")
    with hub.serve():
        yield hub


def source_for(hub: KojiHub, sigkeys: tuple[str, ...] = (), sleeps: list[float] | None = None
               ) -> KojiSource:
    instance = kojiconf.KojiInstance("test", hub.hub_url, hub.topurl, sigkeys)
    return KojiSource(instance, FAST, sleep=(sleeps.append if sleeps is not None else None)
                      or (lambda _s: None))


def test_build_by_id_and_by_nvr_with_its_binary_rpms(hub: KojiHub) -> None:
    src = source_for(hub)
    by_nvr = src.get_build("demo-1.0-1.fc40")
    assert src.get_build(by_nvr["id"]) == by_nvr
    assert src.get_build(str(by_nvr["id"])) == by_nvr
    rpms = src.list_rpms(by_nvr)
    assert [f"{r['nvr']}.{r['arch']}" for r in rpms] == [
        "demo-1.0-1.fc40.x86_64", "demo-debuginfo-1.0-1.fc40.x86_64",
        "demo-libs-1.0-1.fc40.x86_64",
    ]
    assert src.rpm_url(by_nvr, rpms[0]) == (
        f"{hub.topurl}/packages/demo/1.0/1.fc40/x86_64/demo-1.0-1.fc40.x86_64.rpm")
    assert src.rpm_url(by_nvr, rpms[0], "abcd1234") == (
        f"{hub.topurl}/packages/demo/1.0/1.fc40/data/signed/abcd1234/x86_64/"
        "demo-1.0-1.fc40.x86_64.rpm")
    assert hub.calls[:2] == ["getBuild", "getBuild"]


def test_unknown_and_unfinished_builds_are_refused_with_a_reason(hub: KojiHub) -> None:
    src = source_for(hub)
    with pytest.raises(BuildNotFound, match="no build 'nosuch-1-1.fc40'.*scratch"):
        src.get_build("nosuch-1-1.fc40")
    with pytest.raises(BuildSkipped, match=r"failedbuild-1.0-1.fc40: state FAILED, only COMPLETE"):
        src.get_build("failedbuild-1.0-1.fc40")


def test_downloads_verify_against_payloadhash(hub: KojiHub) -> None:
    src = source_for(hub)
    build = src.get_build("demo-1.0-1.fc40")
    for rpm in src.list_rpms(build):
        stream, url = src.fetch(build, rpm)
        data = stream.read()
        assert url.endswith(f"/{rpm['arch']}/{rpm['nvr']}.{rpm['arch']}.rpm")
        assert data == hub.rpm_files[rpm["id"]].read_bytes()
        # Our SIGMD5 is rpm's own (the hub read it with the rpm command), for every chunking.
        expected = rpm_query(hub.rpm_files[rpm["id"]], "%{SIGMD5}")
        assert sigmd5_of(io.BytesIO(data)) == expected == rpm["payloadhash"]
        for size in (1, 7, 100, 113):
            digest = SigMD5()
            for at in range(0, len(data), size):
                digest.update(data[at: at + size])
            assert digest.hexdigest() == expected


def test_sigmd5_rejects_what_is_not_an_rpm() -> None:
    with pytest.raises(FormatError, match="lead magic"):
        sigmd5_of(io.BytesIO(b"\x7fELF" + bytes(200)))
    with pytest.raises(TruncatedError):
        sigmd5_of(io.BytesIO(b"\xed\xab\xee\xdb" + bytes(20)))


def test_network_errors_and_5xx_are_retried_with_growing_backoff(hub: KojiHub) -> None:
    sleeps: list[float] = []
    src = source_for(hub, sleeps=sleeps)
    build = src.get_build("demo-1.0-1.fc40")
    main, debuginfo, _libs = src.list_rpms(build)
    hub.fail_next(main["id"], 2, status=503)
    stream, _url = src.fetch(build, main)
    assert stream.read() == hub.rpm_files[main["id"]].read_bytes()
    assert sleeps == [0.01, 0.02]
    hub.drop_next(debuginfo["id"], 1)  # the connection dies half-way through the body
    stream, _url = src.fetch(build, debuginfo)
    assert stream.read() == hub.rpm_files[debuginfo["id"]].read_bytes()
    assert hub.requests.count(hub.url_path(debuginfo["id"])) == 2


def test_a_download_that_keeps_failing_gives_up_with_the_reason(hub: KojiHub) -> None:
    src = source_for(hub)
    build = src.get_build("demo-1.0-1.fc40")
    rpm = src.list_rpms(build)[0]
    hub.fail_next(rpm["id"], 10, status=502)
    with pytest.raises(DownloadError, match=r"HTTP 502 from .*gave up after 4 tries"):
        src.fetch(build, rpm)
    assert hub.requests.count(hub.url_path(rpm["id"])) == 4


def test_a_corrupt_rpm_fails_verification_and_is_not_retried(hub: KojiHub) -> None:
    src = source_for(hub)
    build = src.get_build("demo-1.0-1.fc40")
    rpm = src.list_rpms(build)[0]
    hub.corrupt(rpm["id"])
    with pytest.raises(VerificationError,
                       match=f"SIGMD5 [0-9a-f]{{32}} does not match Koji's payloadhash "
                             f"{rpm['payloadhash']}"):
        src.fetch(build, rpm)
    assert hub.requests.count(hub.url_path(rpm["id"])) == 1


def test_the_hub_answering_5xx_is_retried_by_the_koji_library(hub: KojiHub) -> None:
    src = source_for(hub)
    hub.hub_fail(2)
    assert src.get_build("demo-1.0-1.fc40")["name"] == "demo"
    hub.hub_fail(10)
    with pytest.raises(KojiError, match="getBuild"):
        src.get_build("demo-1.0-1.fc40")


def test_signed_copy_for_a_configured_key_else_unsigned(hub: KojiHub) -> None:
    src = source_for(hub, sigkeys=("feedf00d", "abcd1234"))
    build = src.get_build("demo-1.0-1.fc40")
    main, debuginfo, libs = src.list_rpms(build)
    hub.sign(main["id"], "abcd1234")
    hub.sign(debuginfo["id"], "abcd1234")
    hub.sign(debuginfo["id"], "feedf00d")
    signed_path = hub.sign(libs["id"], "abcd1234")
    keys = src.signed_keys([main, debuginfo, libs])
    assert keys == {main["id"]: "abcd1234", debuginfo["id"]: "feedf00d",
                    libs["id"]: "abcd1234"}
    _stream, url = src.fetch(build, main, keys[main["id"]])
    assert "/data/signed/abcd1234/x86_64/" in url
    signed_path.unlink()  # Koji prunes signed copies: fall back to the unsigned one
    stream, url = src.fetch(build, libs, keys[libs["id"]])
    assert url == src.rpm_url(build, libs)
    assert stream.read() == hub.rpm_files[libs["id"]].read_bytes()
    assert "multiCall" in hub.calls


def test_instances_come_from_ini_or_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    shipped = kojiconf.load_instances(Path(__file__).parents[3] / "conf/koji-instances.conf")
    assert set(shipped) == {"primary", "arm", "ppc", "s390"}
    assert shipped["primary"] == kojiconf.KojiInstance(
        "primary", "https://koji.fedoraproject.org/kojihub", "https://kojipkgs.fedoraproject.org")
    conf = tmp_path / "k.json"
    conf.write_text(json.dumps({"lab": {"hub": "http://hub.lab/kojihub/",
                                        "topurl": "http://pkgs.lab", "sigkeys": "AB12 cd34"}}))
    monkeypatch.setenv("DARKSERVER_KOJI_CONF", str(conf))
    assert kojiconf.get_instance("lab") == kojiconf.KojiInstance(
        "lab", "http://hub.lab/kojihub", "http://pkgs.lab", ("ab12", "cd34"))
    # Not named: the only configured instance (never a built-in one it does not list).
    assert kojiconf.get_instance().name == "lab"
    conf.write_text(json.dumps({n: {"hub": f"http://{n}/kojihub", "topurl": "http://p"}
                                for n in ("lab", "lab2")}))
    with pytest.raises(kojiconf.KojiConfigError, match=r"unknown Koji instance 'primary' "
                                                       r"\(configured: lab, lab2\); name one"):
        kojiconf.get_instance()
    bad = tmp_path / "bad.conf"
    bad.write_text("[x]\nhub = ftp://nope\ntopurl = http://ok\n")
    with pytest.raises(kojiconf.KojiConfigError, match=r"\[x\] hub must be an http\(s\) URL"):
        kojiconf.load_instances(bad)


def test_an_https_hub_is_reached_with_the_instance_ca_bundle_and_refused_without(
        tmp_path: Path) -> None:
    from tests.kojihub import make_tls

    ca, cert, key = make_tls(tmp_path / "pki")
    hub = KojiHub(tmp_path / "koji")
    hub.add_build(cached_rpms())
    with hub.serve(tls=(cert, key)):
        assert hub.hub_url.startswith("https://")
        conf = tmp_path / "koji-instances.conf"
        conf.write_text(f"[tls]\nhub = {hub.hub_url}\ntopurl = {hub.topurl}\n"
                        f"serverca = {ca}\n[plain]\nhub = {hub.hub_url}\n"
                        f"topurl = {hub.topurl}\n")
        trusted = KojiSource(kojiconf.get_instance("tls", conf), RetryPolicy(attempts=1))
        build = trusted.get_build("demo-1.0-1.fc40")
        main = trusted.list_rpms(build)[0]
        stream, url = trusted.fetch(build, main)
        assert url.startswith("https://")
        assert stream.read() == hub.rpm_files[main["id"]].read_bytes()
        # The same hub without the CA: the certificate is not trusted, for calls and files.
        plain = KojiSource(kojiconf.get_instance("plain", conf), RetryPolicy(attempts=1))
        with pytest.raises(KojiError, match="CERTIFICATE_VERIFY_FAILED"):
            plain.get_build("demo-1.0-1.fc40")
        with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
            plain.fetch(build, main)


def test_instances_take_koji_profiles_and_tls_keys_and_are_found_by_hub_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here\n")
    koji_conf = tmp_path / "home" / ".koji" / "config"
    koji_conf.parent.mkdir(parents=True)
    koji_conf.write_text(f"[lab]\nserver = https://koji.lab/kojihub\n"
                         f"topurl = https://pkgs.lab\nserverca = {ca}\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    conf = tmp_path / "koji-instances.conf"
    conf.write_text("[lab]\nprofile = lab\nsigkeys = AB12\n"
                    "[other]\nserver = http://other/kojihub/\ntopurl = http://o\n"
                    "no_ssl_verify = yes\n")
    monkeypatch.setenv("DARKSERVER_KOJI_CONF", str(conf))
    lab = kojiconf.get_instance("lab")
    assert lab == kojiconf.KojiInstance("lab", "https://koji.lab/kojihub", "https://pkgs.lab",
                                        ("ab12",), serverca=str(ca))
    assert lab.verify == str(ca)
    other = kojiconf.get_instance("other")
    assert (other.hub, other.no_ssl_verify, other.verify) == ("http://other/kojihub", True, False)
    assert kojiconf.instance_for_hub("https://koji.lab/kojihub/") == lab
    assert kojiconf.instance_for_hub("https://elsewhere/kojihub") is None
    conf.write_text("[bad]\nprofile = no-such-profile\n")
    with pytest.raises(kojiconf.KojiConfigError, match="profile 'no-such-profile'"):
        kojiconf.load_instances()
    conf.write_text(f"[bad]\nhub = https://h/kojihub\ntopurl = https://t\n"
                    f"serverca = {tmp_path}/missing.pem\n")
    with pytest.raises(kojiconf.KojiConfigError, match=r"\[bad\] serverca .*: no such file"):
        kojiconf.load_instances()
