"""X search query operators, evaluated on `Post`s: how an archive is searched like the API.

Supported, as X documents them: words (all must match), "exact phrases", OR (binds looser
than the implicit AND), a leading - to exclude, parentheses, #hashtag, @mention, from:, to:,
lang:, url:, is:retweet/reply/quote, has:media/links/images/hashtags/mentions,
retweets_of:, in_reply_to_tweet_id:, retweets_of_tweet_id:, quotes_of_tweet_id:.
Matching is case-insensitive. Words match whole tokens of the text (and of the expanded URLs),
so `climate` matches "Climate!" and "#climate" but not "#climatechange", as on X.

A query is compiled once into nested closures; each post is tokenised lazily, at most once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pipeline.records import Post

_TOKEN = re.compile(r"\w+")
_SPECIAL = set('()"')

IS_VALUES = {
    "retweet": lambda post: bool(post.retweeted_id),
    "reply": lambda post: bool(post.in_reply_to_id),
    "quote": lambda post: bool(post.quoted_id),
}
HAS_VALUES = {
    "media": lambda post: post.has_media,
    "images": lambda post: bool(post.photos),
    # X: "Posts which contain links and media in the Post body".
    "links": lambda post: bool(post.urls) or post.has_media,
    "hashtags": lambda post: bool(post.hashtags),
    "mentions": lambda post: bool(post.mentions),
}
# Real X operators that an archive has no data for: refused rather than silently ignored.
UNSUPPORTED = {
    "place",
    "place_country",
    "point_radius",
    "bounding_box",
    "bio",
    "bio_name",
    "bio_location",
    "sample",
    "conversation_id",
    "context",
    "entity",
    "list",
    "source",
    "url_title",
    "url_description",
    "followers_count",
    "tweets_count",
    "following_count",
    "listed_count",
}


class QueryError(ValueError):
    """A query that cannot be understood; the message says what is wrong in plain words."""


class NotOnArchives(QueryError):
    """A valid X operator that only X can answer: fine for a live search, not for an archive."""


class _View:
    """One post as the query sees it: tokens and lower-cased lists computed on first use."""

    __slots__ = ("post", "_tokens", "_token_set", "_joined", "_hashtags", "_mentions")

    def __init__(self, post: Post) -> None:
        self.post = post
        self._tokens: list[str] | None = None
        self._token_set: set[str] | None = None
        self._joined: str | None = None
        self._hashtags: set[str] | None = None
        self._mentions: set[str] | None = None

    def tokens(self) -> list[str]:
        if self._tokens is None:
            self._tokens = _TOKEN.findall(self.post.text.casefold())
        return self._tokens

    def token_set(self) -> set[str]:
        if self._token_set is None:
            found = set(self.tokens())
            for url in self.post.urls:
                found.update(_TOKEN.findall(url.casefold()))
            self._token_set = found
        return self._token_set

    def joined(self) -> str:
        if self._joined is None:
            self._joined = " " + " ".join(self.tokens()) + " "
        return self._joined

    def hashtags(self) -> set[str]:
        if self._hashtags is None:
            self._hashtags = {tag.casefold() for tag in self.post.hashtags}
        return self._hashtags

    def mentions(self) -> set[str]:
        if self._mentions is None:
            self._mentions = {name.casefold() for name in self.post.mentions}
        return self._mentions


Node = Callable[[_View], bool]


# --- Tokens of the query -----------------------------------------------------------------------


def _lex(term: str) -> list[tuple[str, str]]:
    """("(" | ")" | "OR" | "NOT" | "PHRASE" | "WORD", text) pairs."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(term)
    while i < n:
        char = term[i]
        if char.isspace():
            i += 1
        elif char in "()":
            out.append((char, char))
            i += 1
        elif char == '"':
            end = term.find('"', i + 1)
            if end < 0:
                raise QueryError(f'A quote is not closed: add the missing " after {term[i : i + 30]!r}.')
            out.append(("PHRASE", term[i + 1 : end]))
            i = end + 1
        elif char == "-" and (i + 1 >= n or term[i + 1].isspace() or term[i + 1] == ")"):
            raise QueryError("A '-' must be followed directly by what it excludes, as in -spam or -is:retweet.")
        elif char == "-":  # only ever at the start of a token: a "-" inside a word is part of it
            out.append(("NOT", "-"))
            i += 1
        else:
            start = i
            while i < n and not term[i].isspace() and term[i] not in _SPECIAL:
                i += 1
            word = term[start:i]
            # An operator may take a quoted value: url:"https://example.com/a b".
            if word.endswith(":") and i < n and term[i] == '"':
                end = term.find('"', i + 1)
                if end < 0:
                    raise QueryError(f'A quote is not closed: add the missing " after {term[start : start + 30]!r}.')
                word += term[i + 1 : end]
                i = end + 1
            out.append(("OR", "OR") if word == "OR" else ("WORD", word))
    return out


# --- Leaves ------------------------------------------------------------------------------------


def _text_match(text: str) -> Node:
    tokens = _TOKEN.findall(text.casefold())
    if not tokens:
        raise QueryError(f"{text!r} has no letters or digits to search for: remove it or quote a phrase with words.")
    if len(tokens) == 1:
        (token,) = tokens
        return lambda view: token in view.token_set()
    needle = " " + " ".join(tokens) + " "
    return lambda view: needle in view.joined()


def _operator(key: str, value: str, word: str) -> Node:
    if not value:
        raise QueryError(f"{word!r} needs a value after the colon, as in {key}:example.")
    folded = value.casefold()
    if key == "from":
        name = folded.lstrip("@")
        return lambda view: view.post.user.casefold() == name
    if key == "to":
        name = folded.lstrip("@")
        return lambda view: view.post.in_reply_to_user.casefold() == name
    if key == "lang":
        return lambda view: view.post.lang.casefold() == folded
    if key == "url":
        return lambda view: any(folded in url.casefold() for url in view.post.urls)
    if key == "retweets_of":
        prefix = f"rt @{folded.lstrip('@')}:"
        return lambda view: bool(view.post.retweeted_id) and view.post.text[: len(prefix)].casefold() == prefix
    if key in ("is", "has"):
        table = IS_VALUES if key == "is" else HAS_VALUES
        test = table.get(folded)
        if test is None:
            raise QueryError(f"Unknown {key}: value {value!r}: use one of {', '.join(f'{key}:{v}' for v in table)}.")
        return lambda view: test(view.post)
    field = {
        "in_reply_to_tweet_id": "in_reply_to_id",
        "retweets_of_tweet_id": "retweeted_id",
        "quotes_of_tweet_id": "quoted_id",
    }[key]
    return lambda view: getattr(view.post, field) == value


_OPERATORS = {"from", "to", "lang", "url", "is", "has", "retweets_of"} | {
    "in_reply_to_tweet_id",
    "retweets_of_tweet_id",
    "quotes_of_tweet_id",
}


def _leaf(word: str) -> Node:
    if word.startswith("#") and len(word) > 1:
        tag = word[1:].casefold()
        return lambda view: tag in view.hashtags()
    if word.startswith("@") and len(word) > 1:
        name = word[1:].casefold()
        return lambda view: name in view.mentions()
    key, colon, value = word.partition(":")
    if colon:
        key = key.casefold()
        if key in _OPERATORS:
            return _operator(key, value, word)
        if key in UNSUPPORTED:
            raise NotOnArchives(
                f"The X operator {key}: cannot be used on an archive: its posts do not carry that data."
            )
    return _text_match(word)


# --- Grammar: query := or ; or := and ("OR" and)* ; and := unary+ ; unary := "-" unary | atom ---


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek() == ")":
            raise QueryError("A ')' has no matching '(': remove it or add the '('.")
        return node

    def unclosed(self) -> str:
        """The message for a query that ends with parentheses still open, saying how many."""
        kinds = [kind for kind, _ in self.tokens]
        missing = kinds.count("(") - kinds.count(")")
        if missing <= 1:
            return "A '(' is not closed: add the missing ')'."
        return f"{missing} '(' are not closed: add the {missing} missing ')', or remove the '(' you did not mean."

    def parse_or(self) -> Node:
        branches = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            if self.peek() in (None, ")", "OR"):
                raise QueryError("OR needs something to match on both sides, as in cats OR dogs.")
            branches.append(self.parse_and())
        if len(branches) == 1:
            return branches[0]
        return lambda view: any(branch(view) for branch in branches)

    def parse_and(self) -> Node:
        parts: list[Node] = []
        while self.peek() not in (None, ")", "OR"):
            parts.append(self.parse_unary())
        if not parts:
            if self.peek() == "OR":
                raise QueryError("OR needs something to match on both sides, as in cats OR dogs.")
            if self.peek() is None:  # the query ended inside a '(', as in "climate (((": not empty, unclosed
                raise QueryError(self.unclosed())
            raise QueryError("Empty parentheses: put terms inside them or remove them.")
        if len(parts) == 1:
            return parts[0]
        return lambda view: all(part(view) for part in parts)

    def parse_unary(self) -> Node:
        if self.peek() == "NOT":
            self.take()
            if self.peek() in (None, ")", "OR"):
                raise QueryError("A '-' must be followed directly by what it excludes, as in -spam or -is:retweet.")
            inner = self.parse_unary()
            return lambda view: not inner(view)
        kind, text = self.take()
        if kind == "(":
            node = self.parse_or()
            if self.peek() != ")":
                raise QueryError(self.unclosed())
            self.take()
            return node
        if kind == "PHRASE":
            return _text_match(text)
        return _leaf(text)


def match_all(post: Post) -> bool:
    """The predicate of an empty query (the collection skips calling it)."""
    return True


def compile_query(term: str) -> Callable[[Post], bool]:
    """A predicate telling whether a post matches the X query `term`; "" matches every post
    (and gives `match_all`).

    Raises QueryError for a query that cannot be understood.
    """
    tokens = _lex(term or "")
    if not tokens:
        return match_all
    node = _Parser(tokens).parse()
    return lambda post: node(_View(post))
