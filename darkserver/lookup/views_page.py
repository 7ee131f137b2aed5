"""``/``: one self-contained HTML page: what the service is, the API, and a search box.

Its links are relative, or start with the configured ``DARKSERVER_BASE_URL``: never with the
request's Host header, which a client chooses. The inline style and script carry a per-response
nonce, and the Content-Security-Policy allows nothing else: no other script, style, frame or
form target, and requests only to this server.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from darkserver import __version__
from darkserver.lookup.errors import api

EXAMPLE_ID = "868357887701f51d867eacd0da6e5af6d8c70ce2"
# Shown in the curl examples until the page's script puts the browser's own origin there.
BASE_PLACEHOLDER = "$DARKSERVER_URL"

CSP = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
       "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@api("GET")
def index(request: HttpRequest) -> HttpResponse:
    base = str(settings.DARKSERVER_BASE_URL).rstrip("/")
    nonce = secrets.token_urlsafe(16)
    response = render(request, "index.html", {
        "link_base": base, "shown_base": base or BASE_PLACEHOLDER, "base_configured": bool(base),
        "version": __version__, "example": EXAMPLE_ID, "nonce": nonce,
    })
    response["Content-Security-Policy"] = CSP.format(nonce=nonce)
    for name, value in PAGE_HEADERS.items():
        response[name] = value
    return response
