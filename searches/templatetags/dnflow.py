"""Small helpers for the templates: bar widths, durations, numbers, and the posts-over-time chart."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

from pipeline.hydrate import REASONS
from pipeline.times import parse_iso

from ..run_files import Timeline

register = template.Library()

CHART_WIDTH = 720
CHART_HEIGHT = 180
CHART_GAP = 1


@register.filter
def percent_of(value, maximum) -> str:
    """A bar's width in percent of the largest bar, as a CSS number ("42.5")."""
    try:
        share = 100 * float(value) / float(maximum)
    except (TypeError, ValueError, ZeroDivisionError):
        return "0"
    return f"{max(0.0, min(share, 100.0)):.1f}"


@register.filter
def number(value, kind: str = "") -> str:
    """One way to write numbers: counts with thousands separators (12,345), ratios (kind "ratio")
    always with two decimals (9,626.00, 0.44)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if kind == "ratio" or not value.is_integer():
        return f"{value:,.2f}"
    return intcomma(int(value))


# Screen names and hashtags as X allows them: anything else is not made into a link.
_SCREEN_NAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")
_HASHTAG = re.compile(r"^\w{1,140}$")


@register.filter
def profile_url(name: str) -> str:
    """The X address of an account, or "" for a name X would not have."""
    return f"https://x.com/{name}" if isinstance(name, str) and _SCREEN_NAME.match(name) else ""


@register.filter
def hashtag_url(tag: str) -> str:
    return f"https://x.com/hashtag/{quote(tag)}" if isinstance(tag, str) and _HASHTAG.match(tag) else ""


@register.filter
def web_url(url: str) -> str:
    """The URL itself when it is a web address (http or https), else "": never a javascript: link."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except (ValueError, AttributeError):
        return ""
    return url if scheme in ("http", "https") else ""


@register.filter
def domain_url(domain: str) -> str:
    return f"https://{domain}/" if isinstance(domain, str) and _DOMAIN.match(domain) else ""


_DOMAIN = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
SHORT_URL = 46


@register.filter
def short_url(url: str) -> str:
    """A long URL shown by its start and its end, which is what tells links apart (the whole URL is
    in the link's title): "twitter.com/scientist/status/14…/photo/1"."""
    text = str(url)
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    text = text.removeprefix("www.")
    if len(text) <= SHORT_URL:
        return text
    return text[: SHORT_URL - 18] + "…" + text[-17:]


@register.filter
def total(counts) -> int:
    """The sum of a dict's values (a summary's counts by reason)."""
    return sum(counts.values()) if isinstance(counts, dict) else 0


@register.filter
def missing_reason(reason: str) -> str:
    """What X means by a lookup's reason, in words."""
    return REASONS.get(reason, "")


@register.filter
def is_tweet_id(value) -> bool:
    """Only a plain number goes into a link to the post on X."""
    return isinstance(value, str) and value.isdigit() and len(value) <= 20


@register.filter
def iso_time(value):
    """An ISO 8601 text from an output file as a datetime, for the date filter; None if unreadable."""
    return parse_iso(value)


@register.filter
def seconds(value) -> str:
    """A duration in words a person reads at a glance: 0.4 s, 12 s, 3 min 5 s, 2 h 10 min."""
    if value is None or value == "":
        return ""
    total = float(value)
    if total < 10:
        return f"{total:.1f} s"
    if total < 60:
        return f"{total:.0f} s"
    minutes, secs = divmod(int(round(total)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def every(value) -> str:
    """A schedule's interval in words: "hour", "6 hours", "day", "week"."""
    if value is None:
        return ""
    hours = int(value.total_seconds() // 3600)
    for size, word in ((168, "week"), (24, "day"), (1, "hour")):
        if hours % size == 0:
            n = hours // size
            return word if n == 1 else f"{n} {word}s"
    return f"{value.total_seconds() / 3600:.1f} hours"


UNIT_FORMATS = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}


@register.inclusion_tag("searches/_timeline_chart.html")
def timeline_chart(timeline: Timeline | None) -> dict:
    """Posts over time as an inline SVG bar chart (server-rendered, no script), with a table beside."""
    if timeline is None or not timeline.buckets:
        return {"bars": []}
    peak = timeline.peak or 1
    slot = CHART_WIDTH / len(timeline.buckets)
    fmt = UNIT_FORMATS[timeline.unit]
    bars = []
    for index, (start, count) in enumerate(timeline.buckets):
        height = CHART_HEIGHT * count / peak
        bars.append(
            {
                "x": f"{index * slot:.2f}",
                "y": f"{CHART_HEIGHT - height:.2f}",
                "width": f"{max(slot - CHART_GAP, 0.5):.2f}",
                "height": f"{height:.2f}",
                "label": start.strftime(fmt),
                "count": count,
            }
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "unit": timeline.unit,
        "peak": timeline.peak,
        "total": timeline.total,
        "first": bars[0]["label"],
        "last": bars[-1]["label"],
    }
