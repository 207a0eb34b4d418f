"""Pages of a long list of searches, counted only as far as a person reads.

Django's Paginator counts the whole list for "Page 1 of 4,000 · 100,000 searches": on a list of
100,000 that exact count is most of what the page costs, every time it is shown. Here the count
stops at COUNT_UP_TO: a list shorter than that is counted exactly as before; a longer one says "more
than 1,000 searches" until its last page, which knows its place and so its total.

The "Older" link carries the last row it leaves (`<list>_after=<id>`): the next page is the rows
after that one in the list's order, found through the list's index, where an offset would walk
every entry before it (page 4,000 of 100,000 walks 99,975: 15 ms on PostgreSQL), and a search
started meanwhile does not push a row of the page just read onto the next one. A page number typed
by hand, and the "Newer" link, still skip by offset.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.functional import cached_property

PAGE_SIZE = 25
COUNT_UP_TO = 1_000  # a list this long is counted exactly; past it, "more than"
LAST_PAGE_ASKED = 10_000_000  # a bigger page number is past the end of any list (and of SQL's integers)


class SearchPage:
    """Page `number` (from 1) of an ordered list of searches; iterating gives its rows.

    `total` is the number of searches in the list, or None when the list is longer than the count
    goes (`COUNT_UP_TO`) and this is not its last page; `num_pages` likewise.
    """

    def __init__(
        self, ids: QuerySet, number: int, rows_for, window: QuerySet | None = None, after_id: int | None = None
    ) -> None:
        """`window`: the ids from this page on, when an "Older" link says where the page starts
        (after the search `after_id`)."""
        self.ids = ids
        self.number = number
        self.from_link = window is not None
        self.after_id = after_id if self.from_link else None
        # One row more than a page says whether there is a next one; the window of ids is a
        # subquery of the one query for the rows.
        if window is None:
            window = ids[(number - 1) * PAGE_SIZE :]
        rows = rows_for(window[: PAGE_SIZE + 1])
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
        if self.has_next or self.from_link:  # a link's page number is only as good as the links before it
            return None
        return (self.number - 1) * PAGE_SIZE + len(self.rows)

    @property
    def count_up_to(self) -> int:
        return COUNT_UP_TO

    @property
    def num_pages(self) -> int | None:
        return None if self.total is None else pages_of(self.total)

    @property
    def has_previous(self) -> bool:
        return self.number > 1 or self.from_link

    @property
    def last_id(self) -> int | None:
        """Where the "Older" link starts the next page from."""
        return self.rows[-1].pk if self.rows else None

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self) -> int:
        return max(1, self.number - 1)

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def pages_of(total: int) -> int:
    """How many pages `total` searches fill (an empty list has its one page)."""
    return max(1, -(-total // PAGE_SIZE))


def page_number(text: str | None) -> int:
    """The page asked for in a query string: 1 for anything that is not a whole number from 1."""
    try:
        number = int(text or 1)
    except ValueError:
        return 1
    return min(number, LAST_PAGE_ASKED) if number >= 1 else 1


def search_page(ids: QuerySet, number_text: str | None, rows_for, after_text: str | None = None) -> SearchPage:
    """The page asked for, or the last page when the list ends before it (as Paginator.get_page).
    `after_text`: the id of the search an "Older" link left the previous page at."""
    number = page_number(number_text)
    after_id = _search_id(after_text)
    window = _after(ids, after_id) if after_id is not None else None
    page = SearchPage(ids, number, rows_for, window, after_id)
    if window is not None and not page.rows:  # nothing after that search any more: go by the number
        return search_page(ids, number_text, rows_for)
    if page.rows or page.number == 1:
        # Counted now, not when the template asks, so that the queries of a page do not depend on
        # how long its list is.
        pages = page.num_pages
        if page.from_link and pages is not None and page.number > pages:
            page.number = pages  # the link's number from before searches were deleted
        return page
    total = ids.count()  # past the end (an old link, a hand-typed number): count once to find the last
    return SearchPage(ids, pages_of(total), rows_for)


def _search_id(text: str | None) -> int | None:
    """A search id from a query string, or None for anything else."""
    if not text or len(text) > 18 or not (text.isascii() and text.isdecimal()):
        return None
    return int(text)


def _after(ids: QuerySet, after_id: int) -> QuerySet | None:
    """The ids after the search `after_id` in the list's order (newest first by one field, then
    by id), or None when it is not a search of this list (gone since, or never)."""
    order = ids.query.order_by
    field = order[0].removeprefix("-")
    assert order == (f"-{field}", "-pk"), f"a list newest first by {field}, then by id, not {order}"
    anchor = ids.filter(pk=after_id).values_list(field, flat=True).first()
    if anchor is None:
        return None
    # `field <= anchor` is what lets the index seek to the anchor: on its own the OR (ties by id)
    # made SQLite walk the index from the newest entry (17 ms at page 4,000 instead of 0.02 ms).
    after = Q(**{f"{field}__lt": anchor}) | Q(**{field: anchor, "pk__lt": after_id})
    return ids.filter(Q(**{f"{field}__lte": anchor}) & after)
