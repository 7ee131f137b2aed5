"""One URL-template vocabulary: a template renders the same URL in the importer, the server and
the client, for a real rpm and a real deb, and the README lists exactly its fields."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from darkclient.config import Config
from darkclient.errors import ConfigError
from darkclient.urls import candidates
from darkcore import urltemplates
from darkimport.run.scan import ScanOptions, scan_path
from darkimport.run.store import store_scan
from tests.conftest import SampleSet

ROOT = Path(__file__).resolve().parents[1]
# Every field, each in its own path segment: a field rendered differently anywhere shows.
EVERY_FIELD = "https://dl.example/" + "/".join(f"{f}={{{f}}}" for f in urltemplates.FIELDS)


def _segments(url: str) -> dict[str, str]:
    return dict(seg.split("=", 1) for seg in url.removeprefix("https://dl.example/").split("/"))


def _oracle(package: Path) -> dict[str, str]:
    """What rpm / dpkg-deb themselves say about the package."""
    if package.suffix == ".rpm":
        out = subprocess.run(
            ["rpm", "-qp", "--nosignature", "--qf",
             "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{SOURCERPM}", str(package)],
            capture_output=True, text=True, check=True).stdout
        name, version, release, arch, srpm = out.split("|")
        return {"name": name, "version": version, "release": release, "arch": arch,
                "build_name": srpm.rsplit("-", 2)[0], "kind": "rpm",
                "nvra": f"{name}-{version}-{release}.{arch}"}
    fields = {}
    for key in ("Package", "Version", "Architecture", "Source"):
        fields[key] = subprocess.run(["dpkg-deb", "-f", str(package), key], capture_output=True,
                                     text=True, check=True).stdout.strip()
    version = fields["Version"].split(":")[-1]
    upstream, _, revision = version.rpartition("-")
    return {"name": fields["Package"], "version": upstream or version, "release": revision,
            "arch": fields["Architecture"], "kind": "deb",
            "build_name": (fields["Source"] or fields["Package"]).split(" ")[0],
            "nvra": f"{fields['Package']}_{version}_{fields['Architecture']}"}


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", [".rpm", ".deb"])
def test_one_template_one_url_in_importer_server_and_client(
        suffix: str, sample_set: SampleSet, client, settings) -> None:
    options = ScanOptions(url_templates={suffix[1:]: EVERY_FIELD})
    # The importer: the URL it stores.
    package, scan = next((p, s) for p in sample_set.packages if p.suffix == suffix
                         for s in [scan_path(p, options)] if s.elves)
    assert not [w for w in scan.warnings if "URL template" in w]
    stored = scan.meta.url
    store_scan(scan)
    # The server: the candidate it lists for the same template.
    settings.DARKSERVER_URL_TEMPLATES = [{"kind": "mirror", "distro": "", "template": EVERY_FIELD}]
    build_id = scan.elves[0].build_id.hex()
    match = client.get(reverse("api-buildid", args=[build_id])).json()["matches"][0]
    served = [u["url"] for u in match["urls"] if u["kind"] == "mirror"]
    # The client: its own template, from the server's answer.
    ours = [c.url for c in candidates(match, Config(templates={"": {"mirror": [EVERY_FIELD]}}))
            if c.origin == "config"]
    assert served == ours == [stored]
    rendered = _segments(stored)
    assert rendered.keys() == urltemplates.FIELDS.keys()
    expected = _oracle(package)
    assert {k: rendered[k] for k in expected} == expected
    assert rendered["filename"] == package.name
    assert rendered["initial"] == expected["name"][0].lower()
    assert rendered["instance"] == "" and rendered["epoch"] == ""


def test_unknown_fields_are_refused_on_every_side(tmp_path: Path, settings, client) -> None:
    bad = "https://x/{nosuch}/{filename}"
    with pytest.raises(urltemplates.TemplateError, match=r"\{nosuch\} is not a field"):
        urltemplates.check(bad)
    with pytest.raises(urltemplates.TemplateError, match="not a field"):
        urltemplates.check("https://x/{name.__class__}")
    conf = tmp_path / "darkclient.conf"
    conf.write_text(f"[urls fc]\nmirror = {bad}\n")
    from darkclient import config as client_config
    with pytest.raises(ConfigError, match=r"\{nosuch\} is not a field"):
        client_config.load(path=conf)
    from django.core.exceptions import ImproperlyConfigured

    from darkserver.lookup import serialize
    settings.DARKSERVER_URL_TEMPLATES = [{"kind": "mirror", "template": bad}]
    with pytest.raises(ImproperlyConfigured, match="nosuch"):
        serialize.url_templates()


def test_pool_prefix() -> None:
    assert [urltemplates.pool_prefix(s) for s in ("glibc", "libc6", "lib")] == ["g", "libc", "l"]


def test_noarch_basearch_is_the_host_architecture() -> None:
    noarch = urltemplates.Package(
        kind="rpm", name="python3-x", epoch=2, version="1", release="1.fc40", arch="noarch",
        filename="python3-x-1-1.fc40.noarch.rpm", nvra="python3-x-1-1.fc40.noarch",
        distro="fc40", build_name="x", build_version="1", build_release="1.fc40")
    values = urltemplates.fields(noarch, host_arch="aarch64")
    assert (values["arch"], values["basearch"], values["epoch"], values["releasever"]) == (
        "noarch", "aarch64", "2", "40")


def test_the_readme_lists_the_fields() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- url fields.*?-->\n(.*?)<!-- /url fields -->", text, re.S)
    assert block, "README.md has no generated table of URL-template fields"
    assert block.group(1) == urltemplates.markdown_table()
    out = subprocess.run([sys.executable, "-m", "darkcore.urltemplates"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    assert out == block.group(1)
