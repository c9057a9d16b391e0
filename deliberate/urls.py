"""Top-level URLs: participant pages, the admin, the research API and its documentation."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.utils.translation import gettext_lazy
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from results import public
from surveys.admin.landing import install as install_landing


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe for load balancers and compose health checks: no database access."""
    return HttpResponse("ok", content_type="text/plain")


# The admin's login page with the level-one heading Django's own lacks (accessibility).
admin.site.login_template = "admin/deliberate/login.html"
# Organisers meet the product's name, in their language, not "Django administration".
admin.site.site_header = gettext_lazy("Deliberate: organisers")
admin.site.site_title = gettext_lazy("Deliberate")
admin.site.index_title = gettext_lazy("Your polls")
# The admin's index opens with the organiser's polls and the next step for each.
install_landing(admin.site)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("results.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Both documentation pages run under the Content Security Policy: Swagger UI's init script
    # is served from its own URL (the split view), Redoc starts from a static script.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="surveys/api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="surveys/api/redoc.html"),
        name="api-redoc",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path("p/<slug:slug>/results/", public.results, name="public-results"),
    path("", include("surveys.urls")),
]

# Friendly pages in the participant's language; JSON for the research API (deliberate/errors.py).
handler400 = "deliberate.errors.bad_request"
handler403 = "deliberate.errors.permission_denied"
handler404 = "deliberate.errors.page_not_found"
handler500 = "deliberate.errors.server_error"
