"""Client configuration: conf/darkclient.conf works as copied, inline comments, empty distro."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from darkclient import config as configmod
from darkclient.urls import candidates
from darkcore import urltemplates

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "conf" / "darkclient.conf"


def test_example_conf_works_as_copied(tmp_path: Path) -> None:
    copied = tmp_path / "darkclient.conf"
    shutil.copyfile(EXAMPLE, copied)
    cfg = configmod.load(path=copied)
    # Inline comments after the values ("timeout = 10  ; seconds ...") are comments.
    assert (cfg.server, cfg.timeout, cfg.check_timeout, cfg.dead_host_ttl) == (
        "http://127.0.0.1:8000", 10.0, 3.0, 600.0)
    assert cfg.cache_dir == Path("~/.cache/darkclient").expanduser()
    fc = cfg.templates_for("fc40")
    assert fc["mirror"] == ["https://mirror.example.org/fedora/updates/{releasever}/Everything/"
                            "{basearch}/Packages/{first}/{filename}"]
    assert fc["koji"] == configmod.DEFAULT_TEMPLATES["fc"]["koji"]  # not replaced: kept


def test_empty_distro_uses_the_unprefixed_section(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    shutil.copyfile(EXAMPLE, conf)
    cfg = configmod.load(path=conf)
    match = {"package": {"name": "tool", "version": "1", "release": "1", "arch": "x86_64",
                         "filename": "tool-1-1.x86_64.rpm"},
             "build": {"name": "tool", "distro": ""}, "urls": []}
    assert [c.url for c in candidates(match, cfg)] == [
        "https://repo.example.org/packages/tool-1-1.x86_64.rpm"]
    conf.write_text("[darkclient]\ntimeout = 5 # seconds\n")
    assert configmod.load(path=conf).templates_for("") == {}  # no [urls]: server URLs only


def test_every_option_is_documented() -> None:
    text = (ROOT / "docs" / "CLIENT.md").read_text()
    options = re.findall(r"^([a-z_]+) =", EXAMPLE.read_text(), re.MULTILINE)
    keys = [k for kind in configmod.KINDS for k in (kind, f"{kind}_debug")]
    for name in {*options, *keys, *urltemplates.EXAMPLE}:
        assert f"`{name}`" in text or f"{{{name}}}" in text, name
    for env in ("DARKCLIENT_CONF", "XDG_CONFIG_HOME", "DARKSERVER_URL"):
        assert env in text
