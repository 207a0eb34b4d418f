from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("searches/<int:pk>/", views.search_detail, name="search_detail"),
]
