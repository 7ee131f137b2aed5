"""The allowed import directions between the packages, read from every module's syntax tree.

- darkcore imports none of darkserver, darkimport, darkclient, Django;
- darkclient imports none of darkserver, darkimport, Django;
- darkserver never imports darkimport;
- darkimport touches darkserver and Django only where it stores rows (run/store.py, and
  run/audit.py for the import runs) and where it starts Django (djangosetup.py);
- nothing imports a CLI module except an entry point: darkimport/cli.py registers the Koji,
  queue and repository commands, ``python -m darkclient`` runs darkclient/cli.py.

Imports inside functions count, and so do dotted strings that name one of our modules
(``importlib.import_module``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("darkcore", "darkserver", "darkimport", "darkclient")
FORBIDDEN = {
    "darkcore": {"darkserver", "darkimport", "darkclient", "django"},
    "darkclient": {"darkserver", "darkimport", "django"},
    "darkserver": {"darkimport"},
    "darkimport": {"darkserver", "django"},
}
# The exceptions to FORBIDDEN: module -> the top-level packages it may import after all.
STORES_ROWS = {"darkimport.run.store": {"darkserver", "django"},
               # The audit table's rows (one per import run), beside the packages' in store.
               "darkimport.run.audit": {"darkserver", "django"},
               "darkimport.djangosetup": {"darkserver", "django"}}
CLI_ENTRY_POINTS = {
    "darkimport.cli": {"darkimport.koji.cli", "darkimport.queue.cli", "darkimport.repo.cli"},
    "darkclient.__main__": {"darkclient.cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


KNOWN_MODULES = {module_name(p) for p in all_modules()}


def imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports, anywhere in it, as absolute dotted names; for
    ``from a import b`` both ``a`` and ``a.b`` (b may be a module)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and node.value in KNOWN_MODULES \
                and "." in node.value:
            found.add(node.value)
    return found


def violations(module: str, imported: set[str]) -> list[str]:
    top = module.split(".")[0]
    allowed = STORES_ROWS.get(module, set())
    bad = [f"{module} imports {name}" for name in sorted(imported)
           if name.split(".")[0] in FORBIDDEN.get(top, set()) - allowed]
    for name in sorted(imported):
        if name.rpartition(".")[2] == "cli" and name.split(".")[0] in PACKAGES \
                and name not in CLI_ENTRY_POINTS.get(module, set()) and name != module:
            bad.append(f"{module} imports the CLI module {name}")
    return bad


def test_every_module_keeps_the_allowed_directions() -> None:
    found = []
    for path in all_modules():
        module = module_name(path)
        found += violations(module, imports(path.read_text(), module,
                                            path.name == "__init__.py"))
    assert not found, "\n".join(found)


def test_the_walk_sees_every_package() -> None:
    modules = {module_name(p) for p in all_modules()}
    assert {"darkcore.elf", "darkserver.lookup.serialize", "darkimport.run.store",
            "darkclient.cli", "darkimport.koji.cli"} <= modules


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("darkcore.rpm", "def f():\n    from darkserver.lookup import models\n",
     "darkcore.rpm imports darkserver.lookup"),
    ("darkcore.elf", "import django.db\n", "darkcore.elf imports django.db"),
    ("darkclient.urls", "from django.conf import settings\n",
     "darkclient.urls imports django.conf"),
    ("darkserver.lookup.serialize", "from darkimport.run import scan\n",
     "darkserver.lookup.serialize imports darkimport.run"),
    ("darkimport.koji.backfill", "from darkserver.lookup.models import Build\n",
     "darkimport.koji.backfill imports darkserver.lookup.models"),
    ("darkimport.queue.worker", "from . import cli\n",
     "darkimport.queue.worker imports the CLI module darkimport.queue.cli"),
    ("darkimport.koji.source", "import importlib\nimportlib.import_module('darkimport.cli')\n",
     "darkimport.koji.source imports the CLI module darkimport.cli"),
])
def test_a_planted_violation_is_found(module: str, source: str, expected: str) -> None:
    assert expected in violations(module, imports(source, module))


def test_the_allowed_exceptions_pass() -> None:
    assert violations("darkimport.run.store",
                      imports("from darkserver.lookup.models import Build\n"
                              "from django.db import transaction\n", "darkimport.run.store")) == []
    assert violations("darkimport.cli", imports(
        "MODULES = {'koji': 'darkimport.koji.cli', 'worker': 'darkimport.queue.cli'}\n",
        "darkimport.cli")) == []
    assert violations("darkserver.lookup.serialize",
                      imports("from darkcore.elf import machine_name\n",
                              "darkserver.lookup.serialize")) == []
