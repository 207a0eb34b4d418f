"""An archive is searched with the same operators as the X API, with X's precedence and case rules."""

from __future__ import annotations

import pytest

from pipeline.query import QueryError, compile_query
from pipeline.records import Post

POSTS = [
    Post(
        id="1",
        user="Alice",
        text="Climate talks resume in Bonn! #COP28 https://t.co/abc",
        hashtags=["COP28"],
        urls=["https://news.example/climate/bonn"],
        lang="en",
    ),
    Post(id="2", user="bob", text="RT @Alice: Climate talks resume", retweeted_id="1", mentions=["Alice"], lang="en"),
    Post(
        id="3",
        user="carol",
        text="@bob that is good news about the weather",
        in_reply_to_id="2",
        in_reply_to_user="bob",
        mentions=["bob"],
        lang="en",
    ),
    Post(id="4", user="dave", text="Sunset over the sea", photos=["https://pbs.twimg.com/x.jpg"], has_media=True),
    Post(
        id="5",
        user="Eve",
        text="El clima cambia: climate-change en español #Clima",
        hashtags=["Clima"],
        lang="es",
        quoted_id="1",
    ),
]
POSTS[3].lang = "fr"
ALL = {"1", "2", "3", "4", "5"}


def matching(term: str) -> set[str]:
    matches = compile_query(term)
    return {post.id for post in POSTS if matches(post)}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("", ALL),
        ("   ", ALL),
        # words: whole tokens, case-insensitive, all of them
        ("climate", {"1", "2", "5"}),
        ("CLIMATE", {"1", "2", "5"}),
        ("climate talks", {"1", "2"}),
        ("clim", set()),  # a token, not a substring
        ("español", {"5"}),
        ("climate-change", {"5"}),  # a hyphenated word is its tokens in a row
        ("bonn!", {"1"}),
        ("news", {"1", "3"}),  # also the tokens of expanded URLs
        # exact phrases
        ('"talks resume"', {"1", "2"}),
        ('"resume talks"', set()),
        ('"Good News"', {"3"}),
        # OR, and AND binding tighter than OR
        ("sea OR weather", {"3", "4"}),
        ("sunset bonn OR clima", {"5"}),
        ("climate OR sunset bonn", {"1", "2", "5"}),
        ("(climate OR sunset) bonn", {"1"}),
        ("(sunset OR weather) (sea OR news)", {"3", "4"}),
        # negation of words, phrases, operators and groups
        ("climate -talks", {"5"}),
        ('climate -"talks resume"', {"5"}),
        ("climate -is:retweet", {"1", "5"}),
        ("-(climate OR sea)", {"3"}),
        ("-climate -sea", {"3"}),
        # entities
        ("#cop28", {"1"}),
        ("#COP", set()),
        ("#clima", {"5"}),
        ("@ALICE", {"2"}),
        ("@bob", {"3"}),
        # operators on the author and context
        ("from:alice", {"1"}),
        ("FROM:Alice", {"1"}),
        ("to:BOB", {"3"}),
        ("lang:fr", {"4"}),
        ("lang:ES climate", {"5"}),
        ("is:retweet", {"2"}),
        ("is:reply", {"3"}),
        ("is:quote", {"5"}),
        ("has:media", {"4"}),
        ("has:images", {"4"}),
        ("has:links", {"1", "4"}),  # X: links and media
        ("has:hashtags", {"1", "5"}),
        ("has:mentions", {"2", "3"}),
        ("url:news.example", {"1"}),
        ('url:"news.example/climate"', {"1"}),
        ("retweets_of:alice", {"2"}),
        ("in_reply_to_tweet_id:2", {"3"}),
        ("retweets_of_tweet_id:1", {"2"}),
        ("quotes_of_tweet_id:1", {"5"}),
        ("from:bob OR from:carol -is:reply", {"2"}),
    ],
)
def test_operator(term, expected):
    assert matching(term) == expected


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("(climate", "'(' is not closed"),
        ("climate)", "')' has no matching '('"),
        ('"talks resume', "quote is not closed"),
        ("OR climate", "OR needs something to match on both sides"),
        ("climate OR", "OR needs something to match on both sides"),
        ("climate OR OR sea", "OR needs something to match on both sides"),
        ("(OR climate)", "OR needs something to match on both sides"),
        ("climate ()", "Empty parentheses"),
        ("climate (", "A '(' is not closed: add the missing ')'"),
        ("climate (((", "3 '(' are not closed: add the 3 missing ')'"),
        ("(climate OR (sea", "2 '(' are not closed"),
        ("(a) (b", "A '(' is not closed"),
        ("is:verified", "Unknown is: value 'verified': use one of is:retweet, is:reply, is:quote"),
        ("has:video", "Unknown has: value 'video'"),
        ("from:", "needs a value after the colon"),
        ("- climate", "'-' must be followed directly"),
        ("climate -", "'-' must be followed directly"),
        ("place:Paris", "cannot be used on an archive"),
        ("!!!", "no letters or digits"),
    ],
)
def test_malformed_queries_say_what_is_wrong(term, message):
    with pytest.raises(QueryError) as caught:
        compile_query(term)
    assert message in str(caught.value)


def test_query_error_is_a_value_error():
    # Forms and validators that catch ValueError handle a bad query too.
    assert issubclass(QueryError, ValueError)


def test_unknown_word_with_a_colon_is_a_plain_word():
    posts = [Post(id="1", text="Meeting at 10:30 today"), Post(id="2", text="Meeting at 11 today")]
    matches = compile_query("10:30")
    assert [p.id for p in posts if matches(p)] == ["1"]
