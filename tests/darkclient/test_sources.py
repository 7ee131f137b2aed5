"""Which package holds a build's sources: rpms imported by the real importer, asked of the real
server through darkclient.sources, then fetched by debuginfod-find through serve."""

from __future__ import annotations

from pathlib import Path

from darkclient.sources import pick_source, source_docs
from darkclient.urls import make_session
from darkimport.run.records import Provenance
from darkimport.run.scan import scan_path
from darkimport.run.store import store_scan
from tests.darkclient.conftest import FileServer, Program, Rpms, copy_to


def test_imported_debugsource_is_named_for_the_build(darkserver: str, client_env: Path,
                                                     rpms: Rpms, program: Program,
                                                     koji: FileServer) -> None:
    for rpm in (rpms.main, rpms.debuginfo, rpms.debugsource):
        store_scan(scan_path(rpm), Provenance(url=copy_to(koji, rpm)))
    with make_session() as session:
        docs = source_docs(session, darkserver, program.main_id.upper().lower(), 10)
        assert [d["package"]["nvra"] for d in docs] == ["crashy-debugsource-1.0-1.fc40.x86_64"]
        assert docs[0]["urls"] == [{"kind": "package",
                                    "url": f"{koji.url}/{rpms.debugsource.name}"}]
        assert pick_source(docs, "x86_64") is docs[0]
        assert pick_source(docs, "aarch64") is docs[0]  # the only one there is
        assert source_docs(session, darkserver, program.liba_id, 10) == []  # unknown id
