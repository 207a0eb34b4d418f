"""Pages of a long list of searches, counted only as far as a person reads.

Django's Paginator counts the whole list for "Page 1 of 4,000 · 100,000 searches": on a list of
100,000 that exact count is most of what the page costs, every time it is shown. Here the count
stops at COUNT_UP_TO: a list shorter than that is counted exactly as before; a longer one says "more
than 1,000 searches" until its last page, which knows its place and so its total.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.functional import cached_property

PAGE_SIZE = 25
COUNT_UP_TO = 1_000  # a list this long is counted exactly; past it, "more than"
LAST_PAGE_ASKED = 10_000_000  # a bigger page number is past the end of any list (and of SQL's integers)


class SearchPage:
    """Page `number` (from 1) of an ordered list of searches; iterating gives its rows.

    `total` is the number of searches in the list, or None when the list is longer than the count
    goes (`COUNT_UP_TO`) and this is not its last page; `num_pages` likewise.
    """

    def __init__(self, ids: QuerySet, number: int, rows_for) -> None:
        self.ids = ids
        self.number = number
        # One row more than a page says whether there is a next one; the window of ids is a
        # subquery of the one query for the rows.
        rows = rows_for(ids[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1])
        self.has_next = len(rows) > PAGE_SIZE
        self.rows = rows[:PAGE_SIZE]

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def total(self) -> int | None:
        # Counted the same way on every page, so that a page costs the same queries however long
        # its list; past the count, the last page knows the total from its place.
        counted = self.ids[: COUNT_UP_TO + 1].count()
        if counted <= COUNT_UP_TO:
            return counted
        return None if self.has_next else (self.number - 1) * PAGE_SIZE + len(self.rows)

    @property
    def count_up_to(self) -> int:
        return COUNT_UP_TO

    @property
    def num_pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // PAGE_SIZE))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def page_number(text: str | None) -> int:
    """The page asked for in a query string: 1 for anything that is not a whole number from 1."""
    try:
        number = int(text or 1)
    except ValueError:
        return 1
    return min(number, LAST_PAGE_ASKED) if number >= 1 else 1


def search_page(ids: QuerySet, number_text: str | None, rows_for) -> SearchPage:
    """The page asked for, or the last page when the list ends before it (as Paginator.get_page)."""
    page = SearchPage(ids, page_number(number_text), rows_for)
    if page.rows or page.number == 1:
        page.total  # noqa: B018 -- counted now, not when the template asks: a page's queries never vary
        return page
    total = ids.count()  # past the end (an old link, a hand-typed number): count once to find the last
    return SearchPage(ids, max(1, -(-total // PAGE_SIZE)), rows_for)
