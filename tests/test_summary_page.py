"""The summary of a finished search, its files and its sample, read from a hand-written output folder.

The expected numbers come from tests/web_helpers.py, where they can be counted by hand.
"""

import csv
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.urls import reverse

from pipeline import timeline
from searches.models import Status
from tests.web_helpers import COUNTS, POSTS, make_search, write_csv, write_outputs

pytestmark = pytest.mark.django_db


def summary_page(client, search) -> str:
    response = client.get(reverse("search_summary", args=[search.pk]))
    assert response.status_code == 200
    return response.content.decode()


def chart_section(page: str, kind: str) -> str:
    return re.search(rf'<section class="panel chart" id="chart-{kind}".*?</section>', page, re.S).group(0)


def chart(page: str, kind: str) -> list[tuple[str, str]]:
    """(label as shown, value) rows of one bar chart, in the order shown."""
    rows = re.findall(
        r'<th scope="row" title="[^"]*">(.*?)</th>.*?<td class="num">([^<]*)</td>', chart_section(page, kind), re.S
    )
    return [(re.sub(r"<[^>]+>", "", label).strip(), value) for label, value in rows]


def test_summary_shows_posts_time_span_and_distinct_counts(owner_client, owner):
    page = summary_page(owner_client, make_search(owner))
    assert re.search(r"<dt>Posts</dt><dd>5</dd>", page)
    assert "2024-03-01 10:05 – 2024-03-02 09:30 UTC" in page
    assert re.search(r"<dt>Authors</dt><dd>4</dd>", page)


def test_bar_charts_rank_counts_highest_first(owner_client, owner):
    page = summary_page(owner_client, make_search(owner))
    assert chart(page, "hashtags") == [("#climate", "3"), ("#energy", "2")]
    assert chart(page, "mentions") == [("@ada", "1"), ("@zed", "1")]
    assert chart(page, "domains") == [("example.org", "2"), ("news.example.com", "1")]
    assert chart(page, "urls") == [("example.org/heat", "2"), ("news.example.com/solar", "1")]
    # count-followers.csv is not sorted in the fixture: the page ranks it.
    assert chart(page, "followers") == [("ben", "5,000"), ("ada", "120"), ("cleo", "40"), ("dan", "0")]
    # One number format: ratios always with two decimals.
    assert chart(page, "ratio") == [("ben", "50.00"), ("ada", "1.20"), ("cleo", "0.44")]
    # Bars are drawn to scale against the largest: climate 3 -> 100%, energy 2 -> 66.7%.
    assert 'style="width: 100.0%"' in page and 'style="width: 66.7%"' in page


def test_the_headings_keep_initialisms_in_capitals(owner_client, owner):
    page = summary_page(owner_client, make_search(owner))
    assert ">Top URLs</h3>" in page and ">Top hashtags</h3>" in page and "Top urls" not in page


def test_hashtags_accounts_sites_and_links_lead_where_they_live(owner_client, owner):
    page = summary_page(owner_client, make_search(owner))
    leaves = 'rel="noopener noreferrer" target="_blank"'
    assert f'<a href="https://x.com/hashtag/climate" {leaves}>#climate</a>' in chart_section(page, "hashtags")
    assert f'<a href="https://x.com/zed" {leaves}>@zed</a>' in chart_section(page, "mentions")
    assert f'<a href="https://x.com/ben" {leaves}>ben</a>' in chart_section(page, "followers")
    assert f'<a href="https://news.example.com/" {leaves}>news.example.com</a>' in chart_section(page, "domains")
    # A link shows its start and end; the whole address is its title and its target.
    assert f'<a href="https://example.org/heat" {leaves} title="https://example.org/heat">example.org/heat</a>' in (
        chart_section(page, "urls")
    )


def test_a_link_that_is_not_a_web_address_is_shown_not_followed(owner_client, owner):
    counts = {**COUNTS, "count-urls.csv": (["url", "count"], [("javascript:alert(1)", 3), ("https://" + "a" * 90, 1)])}
    search = make_search(owner, outputs=False)
    write_outputs(search, counts=counts)
    section = chart_section(summary_page(owner_client, search), "urls")
    assert "javascript:alert(1)" in section and 'href="javascript' not in section
    assert "aaaaaaaaaaaaaaaaaaaaaaaaaaaa…aaaaaaaaaaaaaaaaa" in section  # the middle left out, never the end


def test_two_links_that_would_look_the_same_shortened_are_shown_whole(owner_client, owner):
    """What the second check found: two articles of one day with the same tracking tail both read
    "nytimes.com/2021/06/26/us/po…tml?smid=tw-share"."""
    day = "https://www.nytimes.com/2021/06/26/us/politics/"
    links = [
        (day + "biden-infrastructure-deal.html?smid=tw-share", 3),
        (day + "trump-rally-ohio.html?smid=tw-share", 2),
    ]
    other = ("https://www.example.org/a/long/path/of/one/article/that/stands/alone.html?ref=x", 1)
    counts = {**COUNTS, "count-urls.csv": (["url", "count"], [*links, other])}
    search = make_search(owner, outputs=False)
    write_outputs(search, counts=counts)

    section = chart_section(summary_page(owner_client, search), "urls")

    for url, _ in links:
        assert f">{url.removeprefix('https://www.')}</a>" in section
    assert "example.org/a/long/path/of/o…/alone.html?ref=x</a>" in section  # alone, it is still shortened

    # Two that differ only by their scheme (or www.) keep it, or they would read the same.
    schemes = [("http://example.com/a", 2), ("https://example.com/a", 1)]
    write_outputs(search, counts={**COUNTS, "count-urls.csv": (["url", "count"], schemes)})
    section = chart_section(summary_page(owner_client, search), "urls")
    assert ">http://example.com/a</a>" in section and ">https://example.com/a</a>" in section


def test_posts_over_time_has_bars_that_fit_the_span_and_labelled_axes(owner_client, owner):
    page = summary_page(owner_client, make_search(owner))
    svg = re.search(r'<figure class="timeline-chart">.*?</figure>', page, re.S).group(0)
    # 2024-03-01 10:05 to 2024-03-02 09:30: in 10-minute bars, 142 of them, gaps as zero.
    bars = re.findall(r"<title>([^<]+)</title>", svg)
    assert len(bars) == 142
    assert bars[0] == "2024-03-01 10:00: 1 post"
    assert bars[4] == "2024-03-01 10:40: 1 post"
    assert bars[1] == "2024-03-01 10:10: 0 posts"
    assert bars[-1] == "2024-03-02 09:30: 1 post"
    labels = re.findall(r'<text class="axis-label"[^>]*>([^<]+)</text>', svg)
    assert labels == ["Time (UTC), 2024-03-01 – 2024-03-02", "Posts per 10 minutes"]
    x_ticks = re.findall(r'<g class="axis axis-x">.*?</g>', svg, re.S)[0].count('class="tick"')
    y_ticks = re.findall(r'<text class="tick"[^>]*text-anchor="end"[^>]*>([^<]+)</text>', svg)
    assert 4 <= x_ticks <= 8 and y_ticks == ["0", "1"]
    # The x axis and the grid lines span the plot, from the y axis to the right edge.
    level = [(float(a), float(b)) for a, b in re.findall(r'<line x1="([\d.]+)" x2="([\d.]+)" y1=', svg) if a != b]
    assert len(level) == 3 and set(level) == {(66, 708)}  # two grid lines and the axis
    assert "5 posts from 2024-03-01 10:00 to 2024-03-02 09:30 UTC, 142 bars of 10 minutes, at most 1 in one." in svg
    assert "at most 1 in 10 minutes" in svg  # what a screen reader says of the drawing
    table = re.search(r"<summary>As a table</summary>.*?</table>", page, re.S).group(0)
    assert table.count("<tr>") == 143  # a header and a row per bar: the chart's numbers, readable


@pytest.mark.parametrize(
    ("bucket", "says"),
    [
        (timeline.MINUTE, "24 bars of one minute"),
        (timeline.HOUR, "24 bars of one hour"),
        (timeline.DAY, "24 bars of one day"),
    ],
)
def test_the_chart_names_the_span_of_its_bars_as_people_say_it(bucket, says):
    start = datetime(2024, 3, 1, tzinfo=UTC)
    step = {timeline.MINUTE: timedelta(minutes=1), timeline.HOUR: timedelta(hours=1), timeline.DAY: timedelta(days=1)}
    series = timeline.Series(bucket, tuple((start + step[bucket] * i, 1) for i in range(24)))
    chart = Template("{% load dnflow %}{% timeline_chart series %}").render(Context({"series": series}))
    assert f"{says}, at most 1 in one." in chart
    assert f"at most 1 in one {bucket}" in chart


def test_a_run_from_before_posts_over_time_existed_charts_its_summary_hours(owner_client, owner):
    search = make_search(owner)
    (search.results_dir / "posts-over-time.csv").unlink()
    summary_path = search.results_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["timeline"] = [
        {"time": "2024-01-01T00:00:00+00:00", "count": 4},
        {"time": "2024-01-20T05:00:00+00:00", "count": 6},
    ]
    summary_path.write_text(json.dumps(summary))
    page = summary_page(owner_client, search)
    svg = re.search(r'<figure class="timeline-chart">.*?</figure>', page, re.S).group(0)
    bars = re.findall(r"<title>([^<]+)</title>", svg)
    # Nineteen days: one bar per day, 20 of them.
    assert len(bars) == 20
    assert bars[0] == "2024-01-01: 4 posts" and bars[-1] == "2024-01-20: 6 posts"
    assert "Posts per day" in svg


def test_top_retweets_show_their_author_time_text_and_a_link_to_the_post(owner_client, owner):
    page = summary_page(owner_client, make_search(owner))
    section = re.search(r'<section class="panel" id="retweets".*?</section>', page, re.S).group(0)
    items = re.findall(r"<li>(.*?)</li>", section, re.S)
    assert len(items) == 3
    assert "7 retweets" in items[0] and ">@ada</a>" in items[0] and "Heat records again #climate #energy" in items[0]
    assert 'href="https://x.com/ada/status/1001" rel="noopener noreferrer" target="_blank"' in items[0]
    assert "2024-03-01 10:05 UTC" in items[0]
    # An original the collection does not hold, from the copy a retweet carried.
    assert "3 retweets" in items[1] and ">@zed</a>" in items[1] and "an original we never saw" in items[1]
    assert "2 retweets" in items[2] and "Solar is cheap now\nsecond line #climate" in items[2]


def test_a_retweeted_post_the_archive_holds_no_copy_of_shows_its_count_and_link(owner_client, owner):
    search = make_search(owner)
    write_csv(search.results_dir / "retweeted-posts.csv", ["tweet_id", "created_at", "user", "text"], [])
    page = summary_page(owner_client, search)
    assert 'href="https://x.com/i/status/999"' in page and "the archive holds no copy of this post" in page


def test_photos_and_groups_of_matching_photos_come_from_the_media_folder(owner_client, owner):
    search = make_search(owner)
    page = summary_page(owner_client, search)
    photos = re.search(r'<section class="panel" id="photos".*?</section>', page, re.S).group(0)
    media = reverse("search_file", args=[search.pk, "media/X"]).removesuffix("X")
    assert f'src="{media}AAA.jpg" alt="Photo shared 2 times"' in photos
    assert f'src="{media}BBB.png" alt="Photo shared 1 time"' in photos
    group = re.search(r'<ul class="photos group".*?</ul>', photos, re.S).group(0)
    assert re.findall(r'src="[^"]*/media/([^"]+)"', group) == ["AAA.jpg", "CCC.png"]
    # The group of one (BBB.png alone) is not a group.
    assert photos.count('class="photos group"') == 1
    image = owner_client.get(f"{media}CCC.png")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content).startswith(b"\x89PNG")


def test_files_are_listed_and_served_with_their_content(owner_client, owner):
    search = make_search(owner)
    page = summary_page(owner_client, search)
    for name in [*COUNTS, "tweet-ids.txt", "summary.json", "media-graph.json", "tweets.csv", "sample.csv"]:
        assert f'href="{reverse("search_file", args=[search.pk, name])}"' in page, name
    package = f"{search.results_run.folder}.zip"
    assert f'href="{reverse("search_file", args=[search.pk, package])}"' in page
    ids = owner_client.get(reverse("search_file", args=[search.pk, "tweet-ids.txt"]))
    assert b"".join(ids.streaming_content).decode().split() == [p[0] for p in POSTS]
    hashtags = owner_client.get(reverse("search_file", args=[search.pk, "count-hashtags.csv"]))
    assert "attachment" in hashtags["Content-Disposition"]
    assert b"".join(hashtags.streaming_content).decode().splitlines() == ["hashtag,count", "climate,3", "energy,2"]
    assert "sandbox" in hashtags["Content-Security-Policy"]


def test_the_files_with_posts_text_say_how_a_spreadsheet_guarded_cell_reads_back(owner_client, owner):
    """What the tester found: a third of the texts (every reply, "@name ...") start with an added ',
    and only the README said so. The page's list of files says it beside each file that does it."""
    page = summary_page(owner_client, make_search(owner))
    for name in ("tweets.csv", "sample.csv"):
        row = re.search(rf'<tr>(?:(?!</tr>).)*?/files/{re.escape(name)}"(?:(?!</tr>).)*</tr>', page, re.S).group(0)
        assert "drop that &#x27; for the text as posted" in row, name
    row = re.search(r'<tr>(?:(?!</tr>).)*?/files/count-hashtags\.csv"(?:(?!</tr>).)*</tr>', page, re.S).group(0)
    assert "drop that" not in row


def test_downloaded_files_are_named_after_their_search_so_two_searches_do_not_collide(owner_client, owner):
    first, second = make_search(owner), make_search(owner, term="drought")
    for search in (first, second):
        hashtags = owner_client.get(reverse("search_file", args=[search.pk, "count-hashtags.csv"]))
        assert hashtags["Content-Disposition"] == f'attachment; filename="search-{search.pk}-count-hashtags.csv"'
        posts = owner_client.get(reverse("search_file", args=[search.pk, "tweets.csv"]))
        assert posts["Content-Disposition"] == f'attachment; filename="search-{search.pk}-tweets.csv"'
        # Read in the browser, and saved from there under the same kind of name.
        ids = owner_client.get(reverse("search_file", args=[search.pk, "tweet-ids.txt"]))
        assert ids["Content-Disposition"] == f'inline; filename="search-{search.pk}-tweet-ids.txt"'
        # The package's name carries the search already, and stays as it is.
        package = f"{search.results_run.folder}.zip"
        assert package.startswith(f"search-{search.pk}-")
        zipped = owner_client.get(reverse("search_file", args=[search.pk, package]))
        assert zipped["Content-Disposition"] == f'attachment; filename="{package}"'
    # On disk and in the list of files, the names are the contract's.
    assert (first.results_dir / "count-hashtags.csv").is_file()
    assert ">count-hashtags.csv</a>" in summary_page(owner_client, first)


@pytest.mark.parametrize(
    "name",
    [
        "../../../../etc/passwd",
        "media/../tweets.csv",
        "media/../../summary.json",
        "media/evil.svg",
        "media/page.html",
        "media/.hidden.png",
        "/etc/passwd",
        "count-hashtags.csv/../tweets.csv",
        "unknown.csv",
        "media/",
    ],
)
def test_only_known_files_are_served_and_no_path_escapes_the_folder(client, owner, name, settings):
    search = make_search(owner, published=True)
    (search.results_dir / "media" / "evil.svg").write_text("<svg onload=alert(1)></svg>")
    (search.results_dir / "media" / "page.html").write_text("<script>alert(1)</script>")
    (search.results_dir / "media" / ".hidden.png").write_text("x")
    response = client.get(f"/searches/{search.pk}/files/{name}")
    assert response.status_code == 404


def test_a_finished_search_without_its_folder_still_has_a_summary_page_that_says_so(owner_client, owner):
    search = make_search(owner, outputs=False)
    page = summary_page(owner_client, search)
    # Not "None in this collection": a finished run's files are somewhere this server does not see.
    assert "but its files are not on this server, so its results cannot be shown" in page
    assert "None in this collection." not in page


def test_damaged_outputs_do_not_break_the_page(owner_client, owner):
    search = make_search(owner)
    (search.results_dir / "summary.json").write_text("{not json")
    (search.results_dir / "count-hashtags.csv").write_bytes(b"\xff\xfe\x00garbage")
    write_csv(search.results_dir / "count-mentions.csv", ["screen_name", "count"], [("ada", "many"), ("zed", 4)])
    page = summary_page(owner_client, search)
    assert chart(page, "mentions") == [("@zed", "4")]
    assert re.search(r"<dt>Posts</dt><dd>5</dd>", page)  # from the search row when summary.json is unreadable


def test_summary_of_an_unfinished_search_leads_back_to_its_status(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING)
    response = owner_client.get(reverse("search_summary", args=[search.pk]))
    assert response.status_code == 302
    assert response["Location"] == search.get_absolute_url()


def test_the_detail_page_of_a_finished_search_includes_the_summary(owner_client, owner):
    search = make_search(owner)
    page = owner_client.get(reverse("search_detail", args=[search.pk])).content.decode()
    assert 'id="summary"' in page and chart(page, "hashtags")[0] == ("#climate", "3")


def test_markup_in_hashtags_names_and_text_is_shown_escaped(owner_client, owner):
    search = make_search(owner, term="<b>term</b>")
    evil = "<script>alert('x')</script>"
    write_csv(search.results_dir / "count-hashtags.csv", ["hashtag", "count"], [(evil, 9)])
    write_csv(search.results_dir / "count-followers.csv", ["user", "followers"], [(evil, 9)])
    write_csv(
        search.results_dir / "retweeted-posts.csv",
        ["tweet_id", "created_at", "user", "text"],
        [("1001", "2024-03-01T10:05:00+00:00", evil, f"look {evil}")],
    )
    page = summary_page(owner_client, search)
    assert "<script>alert" not in page
    assert "<b>term</b>" not in page
    assert "#&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "look &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;term&lt;/b&gt;" in page


def read_sample(search) -> list[dict]:
    with (search.results_dir / "sample.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_owner_can_ask_for_a_new_sample_size(owner_client, owner):
    assert callable(pytest.importorskip("pipeline.summarise").write_sample)  # the workflow's, not ours
    search = make_search(owner)
    assert len(read_sample(search)) == 2
    response = owner_client.post(reverse("search_sample", args=[search.pk]), {"size": 4}, follow=True)
    assert "sample.csv now holds a random sample of up to 4 posts." in response.content.decode()
    rows = read_sample(search)
    assert len(rows) == 4
    assert {r["id"] for r in rows} <= {p[0] for p in POSTS}


@pytest.mark.parametrize(
    "size,message", [("0", "at least 1 post"), ("5000", "at most 1,000 posts"), ("many", "whole number")]
)
def test_a_bad_sample_size_is_refused_with_a_reason(owner_client, owner, size, message):
    search = make_search(owner)
    before = (search.results_dir / "sample.csv").read_bytes()
    response = owner_client.post(reverse("search_sample", args=[search.pk]), {"size": size}, follow=True)
    assert message in response.content.decode()
    assert (search.results_dir / "sample.csv").read_bytes() == before


def test_public_visitors_get_no_sample_form(client, owner):
    page = summary_page(client, make_search(owner, published=True))
    assert "Draw a new sample.csv" not in page


def test_post_text_is_shown_as_written_not_as_guarded_for_spreadsheets(owner_client, owner):
    search = make_search(owner)
    # The workflow writes a quote before a cell a spreadsheet would evaluate (pipeline.outputs.neutralise).
    write_csv(
        search.results_dir / "retweeted-posts.csv",
        ["tweet_id", "created_at", "user", "text"],
        [
            ("1001", "2024-03-01T10:05:00+00:00", "ada", "'@ben =SUM(A1) is how it starts"),
            ("999", "", "zed", ""),
            ("1003", "", "cleo", "'plain"),
        ],
    )
    page = summary_page(owner_client, search)
    assert "@ben =SUM(A1) is how it starts</blockquote>" in page
    assert "&#x27;plain</blockquote>" in page  # a quote before an ordinary letter is the author's own


def test_only_numeric_ids_become_links_to_x(client, owner):
    search = make_search(owner, published=True)
    write_csv(search.results_dir / "retweets.csv", ["tweet_id", "count"], [("javascript:alert(1)", 5), ("1001", 4)])
    page = summary_page(client, search)
    assert 'href="https://x.com/ada/status/1001"' in page
    assert "post javascript:alert(1)</span>" in page
    assert 'href="https://x.com/i/status/javascript' not in page


def test_a_post_s_text_reads_as_written_not_as_x_escapes_it(owner_client, owner):
    # X sends "&", "<" and ">" escaped; a "&lt;" the author typed comes as "&amp;lt;".
    search = make_search(owner)
    write_csv(
        search.results_dir / "retweeted-posts.csv",
        ["tweet_id", "created_at", "user", "text"],
        [("1001", "2024-03-01T10:05:00+00:00", "ada", "online &amp; offline &lt;3 -&gt; &amp;lt;b&amp;gt; stays")],
    )
    page = summary_page(owner_client, search)
    assert (
        "online &amp; offline &lt;3 -&gt; &amp;lt;b&amp;gt; stays" in page
    )  # as the browser shows "online & offline <3 -> &lt;b&gt; stays"
    assert "&amp;amp;" not in page
