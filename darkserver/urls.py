"""Routes: all in darkserver/lookup/urls.py. Every error handler answers JSON (lookup/errors.py)."""

from django.urls import include, path

urlpatterns = [
    path("", include("darkserver.lookup.urls")),
]

handler400 = "darkserver.lookup.errors.bad_request"
handler403 = "darkserver.lookup.errors.forbidden"
handler404 = "darkserver.lookup.errors.not_found"
handler500 = "darkserver.lookup.errors.server_error"
