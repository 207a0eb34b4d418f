from django.contrib import admin
from django.urls import include, path

from searches.views import login_view
from searches.views.accounts import RateLimitedAdminAuthenticationForm

# The admin's log-in gets the same brake on password guessing as the site's.
admin.site.login_form = RateLimitedAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before django.contrib.auth.urls, so its plain LoginView is never reached.
    path("accounts/login/", login_view, name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("searches.urls")),
]
