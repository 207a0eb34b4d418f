from django.urls import path

from . import api, views
from .feeds import PublishedSearchesFeed

urlpatterns = [
    path("", views.home, name="home"),
    path("estimate/", views.estimate, name="estimate"),
    path("compare/", views.compare, name="compare"),
    path("feed/", PublishedSearchesFeed(), name="feed"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    path("searches/<int:pk>/", views.search_detail, name="search_detail"),
    path("searches/<int:pk>/status/", views.search_status, name="search_status"),
    path("searches/<int:pk>/summary/", views.search_summary, name="search_summary"),
    path("searches/<int:pk>/files/<path:name>", views.search_file, name="search_file"),
    path("searches/<int:pk>/sample/", views.search_sample, name="search_sample"),
    path("searches/<int:pk>/publish/", views.search_publish, name="search_publish"),
    path("searches/<int:pk>/unpublish/", views.search_unpublish, name="search_unpublish"),
    path("searches/<int:pk>/rerun/", views.search_rerun, name="search_rerun"),
    path("searches/<int:pk>/collect-again/", views.search_collect_again, name="search_collect_again"),
    path("searches/<int:pk>/refresh/", views.search_refresh, name="search_refresh"),
    path("searches/<int:pk>/recheck/", views.search_recheck, name="search_recheck"),
    path("searches/<int:pk>/purge/", views.search_purge, name="search_purge"),
    path("searches/<int:pk>/purges/<int:number>/", views.search_purge_record, name="search_purge_record"),
    path("searches/<int:pk>/schedule/", views.search_schedule, name="search_schedule"),
    path("searches/<int:pk>/cancel/", views.search_cancel, name="search_cancel"),
    path("searches/<int:pk>/delete/", views.search_delete, name="search_delete"),
    path("searches/<int:pk>/describe/", views.search_describe, name="search_describe"),
    path("api/searches/", api.search_list, name="api_search_list"),
    path("api/searches/<int:pk>/", api.search_detail, name="api_search_detail"),
    path("api/searches/<int:pk>/counts/<str:kind>/", api.search_counts, name="api_search_counts"),
]
