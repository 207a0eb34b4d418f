"""Small helpers for the templates: bar widths, durations, numbers, and the posts-over-time chart."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from django import template
from django.utils import timezone

from pipeline import timeline
from pipeline.hydrate import REASONS
from pipeline.times import parse_iso

register = template.Library()


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
    always with two decimals (9,626.00, 0.44). English separators, as humanize's intcomma writes
    them for the site's one language, at a tenth of its cost (a list row shows a few)."""
    if type(value) is int and kind != "ratio":
        return f"{value:,}"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if kind == "ratio" or not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


@register.filter
def minute(value) -> str:
    """A time to the minute in the site's time zone, "2026-12-05 14:03": what `date:"Y-m-d H:i"`
    writes, without its localisation machinery (a list of searches shows one per row)."""
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


# Screen names, hashtags and domains as X and the web allow them: anything else is not made into a link.
_SCREEN_NAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")
_HASHTAG = re.compile(r"^\w{1,140}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


@register.filter
def post_text(text: str) -> str:
    """A post's text to read: X sends "&", "<" and ">" as "&amp;", "&lt;" and "&gt;" (the files
    keep the text as X sent it). Only those three, "&amp;" last, so that a "&lt;" someone typed
    ("&amp;lt;" from X) stays "&lt;"; the template escapes the result as any text."""
    return str(text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


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


SHORT_URL = 46


@register.filter
def short_url(url: str, among=()) -> str:
    """A long URL shown by its start and its end, which is what tells links apart most often (the
    whole URL is in the link's title): "twitter.com/scientist/status/14…/photo/1". `among`: the
    other URLs shown with it; where two would look the same, both are shown whole (two articles
    of one day, with the same tracking tail)."""
    text = _without_scheme(url)
    if any(other != url and _without_scheme(other) == text for other in among):
        return str(url)  # http:// and https://, or with www. and without: the difference is shown
    if len(text) <= SHORT_URL:
        return text
    short = text[: SHORT_URL - 18] + "…" + text[-17:]
    if any(other != url and short_url(other) == short for other in among):
        return text
    return short


def _without_scheme(url) -> str:
    text = str(url)
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    return text.removeprefix("www.")


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


# The chart's drawing area, in SVG units: the viewBox scales to the page's width.
# The y axis's title is written above it, level (a rotated one is longer than the axis on a phone).
CHART = {"width": 720, "height": 254, "left": 66, "right": 12, "top": 40, "bottom": 52}
CHART_GAP = 1
X_TICKS = 6
# How a bucket's start is written under the axis and in the table, by bucket size.
LABELS = {
    timeline.MINUTE: "%H:%M",
    timeline.TEN_MINUTES: "%H:%M",
    timeline.HOUR: "%m-%d %H:00",
    timeline.DAY: "%Y-%m-%d",
    timeline.WEEK: "%Y-%m-%d",
    timeline.MONTH: "%Y-%m",
    timeline.YEAR: "%Y",
}
FULL = {timeline.MINUTE: "%Y-%m-%d %H:%M", timeline.TEN_MINUTES: "%Y-%m-%d %H:%M", timeline.HOUR: "%Y-%m-%d %H:00"}
# An SVG shows nothing outside its box, so a tick label centred on a bar near the chart's edge
# would be cut ("02:0"). Its width is guessed from its length at the biggest type the stylesheet
# gives the charts (on a phone, in SVG units) and a digit's usual width.
TICK_TYPE = 21
CHARACTER_WIDTH = 0.6


def tick_anchor(x: float, label: str) -> str:
    """Where a tick label at `x` is anchored: centred on its bar, unless that cuts it at an edge."""
    half = len(label) * CHARACTER_WIDTH * TICK_TYPE / 2
    if x + half > CHART["width"]:
        return "end"
    if x - half < 0:
        return "start"
    return "middle"


def bucket_span(bucket: str) -> str:
    """One bar's span in words: "one hour", "10 minutes" (never "one 10 minutes")."""
    return bucket if bucket[0].isdigit() else f"one {bucket}"


def nice_ticks(peak: int, count: int = 4) -> list[int]:
    """Round values for the y axis from 0 to at least `peak`: 0, 5, 10 ... or 0, 200, 400 ..."""
    if peak <= 0:
        return [0, 1]
    raw = peak / count
    magnitude = 10 ** (len(str(int(raw))) - 1)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, peak + step, step))


def _axes(starts: list, bucket: str, peak: int, *, percent: bool = False) -> dict:
    """What every time chart draws besides its data: the plot area, ticks on both axes and the
    axis titles' places. `percent`: the y values are shares (0 to 100) rather than posts."""
    width, height = CHART["width"], CHART["height"]
    plot_w = width - CHART["left"] - CHART["right"]
    plot_h = height - CHART["top"] - CHART["bottom"]
    ticks = nice_ticks(peak)
    top = ticks[-1] or 1
    slot = plot_w / max(len(starts), 1)
    label, full = LABELS[bucket], FULL.get(bucket, LABELS[bucket])
    # At most as many ticks as their labels fit side by side, at the biggest type, with a gap.
    label_width = len(starts[0].strftime(label)) * CHARACTER_WIDTH * TICK_TYPE + TICK_TYPE
    fitting = max(1, int(plot_w // label_width))
    tick_every = max(1, round(len(starts) / X_TICKS), -(-len(starts) // fitting))
    first, last = starts[0], starts[-1]
    x_ticks, ends_at = [], float("-inf")
    for i in range(0, len(starts), tick_every):
        x, text = CHART["left"] + (i + 0.5) * slot, starts[i].strftime(label)
        anchor = tick_anchor(x, text)
        text_width = len(text) * CHARACTER_WIDTH * TICK_TYPE
        left = {"start": x, "middle": x - text_width / 2, "end": x - text_width}[anchor]
        if left < ends_at + TICK_TYPE / 2:
            continue  # pushed against the edge, it would run into the one before (the last, say)
        x_ticks.append({"x": f"{x:.1f}", "label": text, "anchor": anchor})
        ends_at = left + text_width
    return {
        "plot_w": plot_w,
        "plot_h": plot_h,
        "top": top,
        "slot": slot,
        "full": full,
        "x_ticks": x_ticks,
        "y_ticks": [
            {
                "y": f"{CHART['top'] + plot_h - plot_h * value / top:.1f}",
                "label": f"{value}%" if percent else number(value),
            }
            for value in ticks
        ],
        "chart": CHART,
        "axis_y": CHART["top"] + plot_h,
        "axis_right": width - CHART["right"],
        "tick_label_y": CHART["top"] + plot_h + 18,
        "x_title_y": height - 8,
        "y_title_x": 4,
        "y_title_y": CHART["top"] - 16,
        "plot_center": CHART["left"] + plot_w / 2,
        "unit": bucket,
        "span": bucket_span(bucket),
        "first": first.strftime(full),
        "last": last.strftime(full),
        "days_differ": first.date() != last.date(),
    }


@register.inclusion_tag("searches/_timeline_chart.html")
def timeline_chart(series: timeline.Series | None) -> dict:
    """Posts over time as an inline SVG bar chart with labelled axes (server-rendered, no script),
    and the same numbers as a table for anyone (or anything) that does not read charts."""
    if series is None or not series.points:
        return {"bars": []}
    starts = [start for start, _ in series.points]
    axes = _axes(starts, series.bucket, series.peak)
    plot_h, slot = axes["plot_h"], axes["slot"]
    bars = []
    for index, (start, count) in enumerate(series.points):
        bar_h = plot_h * count / axes["top"]
        bars.append(
            {
                "x": f"{CHART['left'] + index * slot:.2f}",
                "y": f"{CHART['top'] + plot_h - bar_h:.2f}",
                "width": f"{max(slot - CHART_GAP, 0.5):.2f}",
                "height": f"{bar_h:.2f}",
                "label": start.strftime(axes["full"]),
                "count": count,
            }
        )
    return {**axes, "bars": bars, "peak": series.peak, "total": series.total}


# Searches compared over time: at most this many lines, each its own colour and dash pattern
# (told apart without colour too).
COMPARE_LINES = 6


@register.inclusion_tag("searches/_compare_timeline.html")
def compare_timeline(grid: timeline.Grid | None, searches: list) -> dict:
    """Several searches' posts over time on one time axis, as lines: counts when the searches are
    of a size, shares of each search's posts (%) when the biggest has over twice the smallest."""
    if grid is None or not grid.starts:
        return {"lines": []}
    keys = [str(search.pk) for search in searches]
    totals = [sum(grid.counts[key]) for key in keys]
    as_shares = min(totals) * 2 < max(totals)
    values = {key: [share * 100 for share in grid.shares[key]] if as_shares else list(grid.counts[key]) for key in keys}
    peak = max((max(v, default=0) for v in values.values()), default=0)
    axes = _axes(list(grid.starts), grid.bucket, max(int(peak + 0.999), 1), percent=as_shares)
    plot_h, slot = axes["plot_h"], axes["slot"]
    lines = []
    for number, (search, key, total) in enumerate(zip(searches, keys, totals, strict=True)):
        points = " ".join(
            f"{CHART['left'] + (i + 0.5) * slot:.1f},{CHART['top'] + plot_h - plot_h * value / axes['top']:.1f}"
            for i, value in enumerate(values[key])
        )
        lines.append({"search": search, "points": points, "style": number % COMPARE_LINES, "total": total})
    rows = [
        {
            "label": start.strftime(axes["full"]),
            "cells": [(grid.counts[key][i], grid.shares[key][i] * 100) for key in keys],
        }
        for i, start in enumerate(grid.starts)
    ]
    return {**axes, "lines": lines, "rows": rows, "as_shares": as_shares, "exact": grid.exact}
