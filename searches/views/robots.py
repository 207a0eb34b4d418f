from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

ROBOTS_TXT = """User-agent: *
Disallow: /searches/*/files/
Disallow: /admin/
Disallow: /accounts/
Disallow: /api/
"""


@require_GET
def robots_txt(request: HttpRequest) -> HttpResponse:
    return HttpResponse(ROBOTS_TXT, content_type="text/plain; charset=utf-8")
