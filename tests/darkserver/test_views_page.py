"""``/``: the page is self-contained, and its search box really works in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from tests.darkserver.conftest import APR_DEBUG_PATH, APR_ID, APR_PATH, make_apr


def test_page_describes_the_service_and_its_api(client, db):
    response = client.get(reverse("index"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert "<h1>Darkserver</h1>" in html
    assert f'curl <span class="base">$DARKSERVER_URL</span>/api/v1/buildid/{APR_ID}' in html
    assert 'href="/api/v1/openapi.json"' in html
    assert '<input type="search" id="q"' in html


def test_page_links_never_come_from_the_host_header(client, db, settings):
    html = client.get(reverse("index"), HTTP_HOST="evil.example").content.decode()
    assert "evil.example" not in html
    settings.DARKSERVER_BASE_URL = "https://darkserver.example/"
    html = client.get(reverse("index"), HTTP_HOST="evil.example").content.decode()
    assert "evil.example" not in html
    assert 'href="https://darkserver.example/api/v1/openapi.json"' in html
    assert f">https://darkserver.example</span>/api/v1/buildid/{APR_ID}" in html


def test_page_allows_only_its_own_inline_script_and_style(client, db):
    first, second = client.get(reverse("index")), client.get(reverse("index"))
    policy = first["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy).group(1)
    assert policy != second["Content-Security-Policy"]  # a fresh nonce per response
    html = first.content.decode()
    assert html.count(f'nonce="{nonce}"') == 2  # the one <style> and the one <script>
    assert len(re.findall(r"<(script|style)\b", html)) == 2
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert (first["X-Content-Type-Options"], first["X-Frame-Options"]) == ("nosniff", "DENY")


def test_page_loads_nothing_from_elsewhere(client, db):
    html = client.get(reverse("index")).content.decode()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"(https?:)?//", html)
    assert "<script src" not in html and "stylesheet" not in html


class _Results(HTMLParser):
    """The text of #results' body rows, #status and #error in a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.ids: dict[str, str] = {"status": "", "error": ""}
        self._in_results = self._in_tbody = False
        self._capture: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attr = dict(attrs)
        if attr.get("id") == "results":
            self._in_results = True
        elif attr.get("id") in self.ids:
            self._capture = attr["id"]
        elif self._in_results and tag == "tbody":
            self._in_tbody = True
        elif self._in_tbody and tag == "tr":
            self.rows.append([])
        elif self._in_tbody and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "table":
            self._in_results = False
        elif tag == "div":
            self._capture = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._capture:
            self.ids[self._capture] += data


def _chromium_dom(url: str, tmp_path) -> _Results:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (scripts/install.sh installs it)"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         # Virtual time waits for the page's fetch() before the DOM is dumped.
         "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    parser = _Results()
    parser.feed(proc.stdout)
    return parser


@pytest.mark.browser
def test_search_box_in_headless_chromium(page_server, tmp_path):
    make_apr()
    # The page runs the search for ?q= on load; upper case proves the server normalises.
    query = urlencode({"q": APR_ID.upper(), "kind": "buildid"})
    page = _chromium_dom(f"{page_server}/?{query}", tmp_path)
    assert page.ids == {"status": "2 matches", "error": ""}
    assert page.rows == [
        [APR_ID, APR_PATH, "apr-1.4.5-1.fc16.x86_64", "fc16", "DYN", "x86_64", "koji"],
        [APR_ID, APR_DEBUG_PATH + " (debug)", "apr-debuginfo-1.4.5-1.fc16.x86_64", "fc16", "DYN",
         "x86_64", "koji"],
    ]

    bad = _chromium_dom(f"{page_server}/?q=xyz", tmp_path)
    assert bad.rows == []
    assert bad.ids == {
        "status": "",
        "error": "400: malformed build-id 'xyz': build-id must be 8 to 128 hex digits, even length",
    }
