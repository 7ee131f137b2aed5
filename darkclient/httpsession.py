"""A requests Session that reads the environment's proxy and CA settings once per host.

requests, trusting the environment, works out the proxies of every request from scratch:
``get_environ_proxies`` walks ``os.environ`` and the no_proxy list on each call, ~0.6 ms, more
than a lookup on a local Darkserver takes (``darkclient serve`` answers each of a debugger's
requests with a lookup and a download, one after the other). The answer depends only on the
URL's scheme and host and on the environment, which a running client does not change, so it is
worked out once per host. Redirects still go through requests' own per-hop rules.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies


class EnvOnceSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._proxies: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self._lock = threading.Lock()
        # requests' (and curl's) CA bundle variables, read once as well.
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")

    def _environ_proxies(self, url: str, no_proxy: str | None) -> dict[str, str]:
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.netloc.lower(), no_proxy)
        with self._lock:
            found = self._proxies.get(key)
        if found is None:
            found = dict(get_environ_proxies(url, no_proxy=no_proxy))
            with self._lock:
                self._proxies[key] = found
        return found

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        # The same merge as requests', with the environment's part remembered per host.
        if proxies is not None:
            for scheme, proxy in self._environ_proxies(
                    str(url), proxies.get("no_proxy")).items():
                proxies.setdefault(scheme, proxy)
        if (verify is True or verify is None) and self._ca_bundle:
            verify = self._ca_bundle
        return {"proxies": merge_setting(proxies, self.proxies),
                "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify),
                "cert": merge_setting(cert, self.cert)}
