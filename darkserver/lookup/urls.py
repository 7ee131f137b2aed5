"""Every route. The compatibility URLs are a fixed contract; /api/v1/ is what openapi.json
documents (a test keeps the two equal). Route names label the metrics.

The three hot lookups come first, from the table the fast path routes from too (hotroutes.py).
"""

from django.urls import path

from darkserver.lookup import hotroutes, views_api, views_compat, views_page

urlpatterns = [
    *hotroutes.urlpatterns,  # compat-buildids, api-buildid, api-buildids
    path("", views_page.index, name="index"),
    # The original service.
    path("rpm2buildids/<nvra:nvra>", views_compat.rpm2buildids, name="compat-rpm2buildids"),
    path("package/<nvra:nvra>", views_compat.package, name="compat-package"),
    path("serverversion", views_compat.serverversion, name="compat-serverversion"),
    # /api/v1/
    path("api/v1/buildid/<buildid:buildid>/sources", views_api.sources, name="api-sources"),
    path("api/v1/prefix/<buildidprefix:prefix>", views_api.prefix, name="api-prefix"),
    path("api/v1/rpm/<nvra:nvra>", views_api.rpm, name="api-rpm"),
    path("api/v1/package/<str:name>", views_api.package, name="api-package"),
    path("api/v1/path", views_api.path, name="api-path"),
    path("api/v1/stats", views_api.stats, name="api-stats"),
    path("api/v1/health", views_api.health, name="api-health"),
    path("api/v1/health/ready", views_api.ready, name="api-ready"),
    path("api/v1/openapi.json", views_api.openapi, name="api-openapi"),
    path("metrics", views_api.prometheus, name="metrics"),
]
