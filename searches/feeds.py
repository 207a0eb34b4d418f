"""An Atom feed of published searches, newest first."""

from __future__ import annotations

from django.contrib.syndication.views import Feed
from django.urls import reverse_lazy
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape

from .models import Search

FEED_ITEMS = 50


class PublishedSearchesFeed(Feed):
    feed_type = Atom1Feed
    title = "dnflow: published searches"
    link = reverse_lazy("home")
    subtitle = "Searches whose summaries, counts, tweet ids and packages their owners have published."

    def items(self):
        return Search.objects.published().with_runs().order_by("-published_at")[:FEED_ITEMS]

    def item_title(self, item: Search) -> str:
        return str(item)

    def item_description(self, item: Search) -> str:
        # Atom marks the summary type="html": readers render it as HTML, so escape it here (the
        # XML writer then escapes it once more) and a term carrying markup stays text.
        results = item.results_run
        posts = f"{results.num_posts:,} posts" if results and results.num_posts is not None else "posts not counted"
        return escape(f"{item.get_source_display()}: {item.term or 'whole archive'}. {posts}.")

    def item_pubdate(self, item: Search):
        return item.published_at

    def item_updateddate(self, item: Search):
        return (item.results_run.finished if item.results_run else None) or item.published_at

    def item_author_name(self, item: Search) -> str | None:
        return item.owner.get_username() if item.owner else None
