"""The web pages, split by feature; urls.py imports them from here."""

from .accounts import login_view
from .actions import (
    search_cancel,
    search_collect_again,
    search_delete,
    search_describe,
    search_publish,
    search_purge,
    search_recheck,
    search_refresh,
    search_rerun,
    search_schedule,
    search_unpublish,
)
from .compare import compare
from .pages import estimate, home
from .robots import robots_txt
from .status import search_detail, search_status
from .summary import search_file, search_purge_record, search_sample, search_summary

__all__ = [
    "compare",
    "estimate",
    "home",
    "login_view",
    "robots_txt",
    "search_cancel",
    "search_collect_again",
    "search_delete",
    "search_describe",
    "search_detail",
    "search_file",
    "search_purge_record",
    "search_publish",
    "search_purge",
    "search_recheck",
    "search_refresh",
    "search_rerun",
    "search_schedule",
    "search_sample",
    "search_status",
    "search_summary",
    "search_unpublish",
]
