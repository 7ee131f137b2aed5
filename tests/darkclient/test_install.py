"""The thin install: the wheel, installed bare into a fresh venv, is the client and the core only,
and that client finds a real ELF file and a real core's modules on a real Darkserver.

The wheel is built from a copy of the source (nothing is written into the tree) and installed
with pip's ordinary index configuration: its only dependencies are requests and zstandard.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.darkclient.conftest import Program

ROOT = Path(__file__).resolve().parents[2]
SERVER_STACK = {"django", "mysqlclient", "gunicorn", "uvicorn", "uvicorn-worker", "uvloop",
                "httptools", "orjson", "prometheus-client", "pika", "koji"}


def _run(args: list[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(kw.pop("env", {}))
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                          timeout=900, **kw)


@pytest.fixture(scope="session")
def bare(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the bin/ of a fresh venv with only the wheel installed)."""
    work = tmp_path_factory.mktemp("bare-install")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("darkcore", "darkclient", "darkserver", "darkimport"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist",
                  src], cwd=work)
    assert built.returncode == 0, built.stderr
    [wheel] = (work / "dist").glob("darkserver-*.whl")
    _run([sys.executable, "-m", "venv", work / "venv"], check=True)
    bin_dir = work / "venv" / "bin"
    installed = _run([bin_dir / "pip", "install", "-q", wheel], cwd=work)
    assert installed.returncode == 0, installed.stderr
    return wheel, bin_dir


def test_the_wheel_requires_only_the_client_and_core_dependencies(
        bare: tuple[Path, Path]) -> None:
    wheel, _ = bare
    with zipfile.ZipFile(wheel) as zf:
        [meta] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        lines = zf.read(meta).decode().splitlines()
    requires = [line.split(":", 1)[1].strip() for line in lines
                if line.startswith("Requires-Dist:")]
    plain = sorted(r.split(">")[0].split("=")[0].split(";")[0].strip().lower()
                   for r in requires if "extra ==" not in r)
    assert plain == ["requests", "zstandard"]
    extras = {line.split(":", 1)[1].strip() for line in lines
              if line.startswith("Provides-Extra:")}
    assert {"server", "import", "all", "test"} <= extras


def test_pip_list_of_the_bare_install_holds_no_server_stack(bare: tuple[Path, Path]) -> None:
    _, bin_dir = bare
    listed = _run([bin_dir / "pip", "list", "--format=json"], check=True).stdout
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    assert "darkserver" in names and "requests" in names
    assert not names & SERVER_STACK, names & SERVER_STACK


@pytest.mark.parametrize(("command", "extra"), [("darkserver", "server"),
                                                ("darkserver-import", "import")])
def test_a_command_without_its_extra_says_which_to_install(
        bare: tuple[Path, Path], command: str, extra: str, tmp_path: Path) -> None:
    _, bin_dir = bare
    done = _run([bin_dir / command, "--help"], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert f"pip install 'darkserver[{extra}]'" in done.stderr


def test_the_bare_client_finds_an_elf_file_and_a_core(
        bare: tuple[Path, Path], darkserver: str, client_env: Path,
        crashy_rows: dict[str, Any], program: Program, cores: dict[str, Path]) -> None:
    _, bin_dir = bare
    env = {"DARKCLIENT_CONF": str(client_env), "HOME": os.environ["HOME"],
           "NO_PROXY": "127.0.0.1,localhost"}
    done = _run([bin_dir / "darkclient", "file", program.main, "--server", darkserver, "--json"],
                env=env, cwd=client_env.parent)
    assert done.returncode == 0, done.stderr
    [item] = json.loads(done.stdout)["items"]
    assert (item["buildid"], item["found"]) == (program.main_id, True)
    assert {m["nvra"] for m in item["matches"]} == {"crashy-1.0-1.fc40.x86_64",
                                                     "crashy-debuginfo-1.0-1.fc40.x86_64"}
    assert {m["url"] for m in item["matches"]} == {crashy_rows["main_url"],
                                                    crashy_rows["debug_url"]}

    done = _run([bin_dir / "darkclient", "core", cores["gdb"], "--server", darkserver,
                 "--json"], env=env, cwd=client_env.parent)
    # 1: the core maps modules the server does not know (libc, the two test libraries).
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    ids = {i["buildid"]: i["found"] for i in doc["items"]}
    assert ids[program.main_id] is True
    assert ids[program.liba_id] is False and ids[program.libb_id] is False
    assert doc["summary"]["found"] == 1
