"""Candidate URL templates: configuration sources, validation, and the documented example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from darkserver.lookup import serialize
from tests.darkserver.conftest import APR_ID, APR_URL

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"


@pytest.fixture
def no_settings_templates(settings):
    del settings.DARKSERVER_URL_TEMPLATES  # absent from settings: the environment / INI decides


def test_the_documented_example_is_a_valid_configuration(settings):
    text = API_MD.read_text()
    block = re.search(r"### Candidate URLs.*?```json\n(.*?)```", text, re.S)
    assert block
    settings.DARKSERVER_URL_TEMPLATES = block.group(1)
    kinds = [(kind, distro) for kind, distro, _ in serialize.url_templates()]
    assert kinds == [("mirror", "fc"), ("archive", "fc"), ("mirror", "deb")]


def test_templates_from_the_environment(client, apr, monkeypatch, no_settings_templates):
    templates = [{"kind": "archive", "distro": "fc1", "template": "https://old/{nvra}.rpm"}]
    monkeypatch.setenv("DARKSERVER_URL_TEMPLATES", json.dumps(templates))
    [main, _] = client.get(reverse("api-buildid", args=[APR_ID])).json()["matches"]
    assert main["urls"] == [
        {"kind": "koji", "url": APR_URL},
        {"kind": "archive", "url": "https://old/apr-1.4.5-1.fc16.x86_64.rpm"},
    ]


def test_templates_from_the_ini(client, apr, monkeypatch, tmp_path, no_settings_templates):
    ini = tmp_path / "darkserverweb.conf"
    ini.write_text(
        "[settings]\n"
        'url_templates = [{"kind": "mirror", "distro": "", "template": "https://m/{filename}"}]\n'
    )
    monkeypatch.delenv("DARKSERVER_URL_TEMPLATES", raising=False)
    monkeypatch.setenv("DARKSERVER_WEB_CONF", str(ini))
    [main, _] = client.get(reverse("api-buildid", args=[APR_ID])).json()["matches"]
    assert main["urls"] == [
        {"kind": "mirror", "url": "https://m/apr-1.4.5-1.fc16.x86_64.rpm"},
        {"kind": "koji", "url": APR_URL},
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"kind": "mirror"}',
        '[{"kind": "mirror"}]',
        '[{"kind": "mirror", "template": "https://x/{nosuch}"}]',
        '[{"kind": "mirror", "template": "https://x/{"}]',
    ],
)
def test_bad_templates_are_a_configuration_error(settings, raw):
    settings.DARKSERVER_URL_TEMPLATES = raw
    with pytest.raises(ImproperlyConfigured, match="DARKSERVER_URL_TEMPLATES must be"):
        serialize.url_templates()


def test_bad_templates_answer_a_json_500_not_a_traceback(apr, settings):
    settings.DARKSERVER_URL_TEMPLATES = "not json"
    response = Client(raise_request_exception=False).get(reverse("api-buildid", args=[APR_ID]))
    assert (response.status_code, response["Content-Type"]) == (500, "application/json")
