from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from exchange.core.errors import json_404, json_500
from exchange.licensing import api_views as licensing_api


def healthz(_request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("exchange.api.urls")),
    path("healthz", healthz),
    path("i18n/", include("django.conf.urls.i18n")),
    path(".well-known/jwks.json", licensing_api.jwks, name="jwks"),
    path("", include("exchange.community.portal_urls")),
    path("", include("exchange.reviews.portal_urls")),
    path("", include("exchange.messaging.portal_urls")),
    path("", include("exchange.rooms.portal_urls")),
    path("", include("exchange.portal.urls")),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    from django.shortcuts import render

    return render(request, "portal/not_found.html", status=404)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        from django.views.defaults import permission_denied

        return permission_denied(request, exception)
    from django.shortcuts import render

    return render(request, "portal/forbidden.html", status=403)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_500(request)
    from django.views.defaults import server_error

    return server_error(request)
