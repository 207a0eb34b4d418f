"""Who mentions whom, and who uses which hashtag: the two networks of a collection, as files for
Gephi and friends (GEXF, GraphML: pipeline.graphxml) and a small JSON for the summary page.

Built after the summary pass from its files (never the raw posts): the edge lists give the edges,
one row per occurrence, and the count files give the nodes' attributes:

- mentions: author -> mentioned account, directed, `weight` = how many times; users carry
  `posts` (their posts in the collection, count-authors.csv) and `followers` (their latest
  snapshot, count-followers.csv; absent for an account that only was mentioned);
- hashtags: author -> hashtag, directed, `weight` = how many times; hashtags carry `uses`
  (count-hashtags.csv), users as above.

Screen names are case-insensitive on X: a node is a lower-cased name (`@name`, `#tag`), labelled
with the form of its heaviest edge.

Size: a graph is held in memory, and a big collection has millions of distinct edges. A
network keeps its MAX_EDGES heaviest edges (ties by the edge's text) and the nodes they join; the
files say so (GraphML: graph attributes; GEXF: the graph's name and the meta description) and so
does the return value. Counting the distinct edges to find the heaviest stays in bounded memory:
past EDGE_MEMORY distinct edges the counts move to a count store (pipeline.countstore) in the
spill folder. The page's JSON holds the VIEW_NODES nodes of highest degree and the edges among
them.
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import io
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

from .contract import (
    COUNT_AUTHORS,
    COUNT_FOLLOWERS,
    COUNT_HASHTAGS,
    HASHTAG_EDGES,
    HASHTAGS_GEXF,
    HASHTAGS_GRAPHML,
    MENTION_EDGES,
    MENTIONS_GEXF,
    MENTIONS_GRAPHML,
    NETWORK_FILES,
    NETWORKS_VIEW,
    SPILL_FOLDER,
)
from .countstore import CountStore
from .graphxml import Network, write_gexf, write_graphml
from .outputs import OutputSet, unneutralise

# The heaviest edges a network file keeps: what Gephi lays out legibly (and what networkx, which
# wrote these files before pipeline.graphxml, wrote in a fraction of a second).
MAX_EDGES = 5_000
# Nodes in the page's JSON (networks.json), by degree, and the heaviest edges among them: what a
# browser draws legibly (and a JSON of tens of KiB).
VIEW_NODES = 120
VIEW_EDGES = 600
# Distinct edges counted in a dict before the counts move to SQLite (about 130 bytes each: 60 MiB).
EDGE_MEMORY = 500_000
_CHUNK = 1024 * 1024
_CRLF = b"\r\n"


@dataclass(frozen=True)
class NetworkReport:
    """What a network file holds, of the whole network."""

    name: str  # "mentions" or "hashtags"
    nodes: int  # in the files
    edges: int  # distinct edges in the files
    weight: int  # occurrences those edges stand for
    edges_total: int  # distinct edges in the collection
    weight_total: int  # occurrences in the collection (rows of the edge list)
    max_edges: int

    @property
    def cut(self) -> bool:
        return self.edges < self.edges_total

    def describe(self) -> str:
        if not self.cut:
            return f"all {self.edges:,} edges ({self.weight:,} occurrences) between {self.nodes:,} nodes"
        return (
            f"cut to the heaviest {self.edges:,} of {self.edges_total:,} edges ({self.weight:,} of "
            f"{self.weight_total:,} occurrences), between {self.nodes:,} nodes"
        )


@dataclass(frozen=True)
class _Kind:
    name: str
    edges_file: str
    gexf: str
    graphml: str
    target_prefix: str  # "@" for accounts, "#" for hashtags


KINDS = (
    _Kind("mentions", MENTION_EDGES, MENTIONS_GEXF, MENTIONS_GRAPHML, "@"),
    _Kind("hashtags", HASHTAG_EDGES, HASHTAGS_GEXF, HASHTAGS_GRAPHML, "#"),
)
assert {name for kind in KINDS for name in (kind.gexf, kind.graphml)} | {NETWORKS_VIEW} == set(NETWORK_FILES)


def write_networks(
    folder: Path, *, max_edges: int = MAX_EDGES, view_nodes: int = VIEW_NODES
) -> dict[str, NetworkReport]:
    """Write contract.NETWORK_FILES into `folder` from the summary pass's files; NETWORKS_VIEW (the
    page's JSON) is put in place last. Returns each network's report (was it cut, and how much)."""
    folder = Path(folder)
    reports: dict[str, NetworkReport] = {}
    view: dict[str, dict] = {}
    spill = folder / SPILL_FOLDER / "networks"
    try:
        with OutputSet() as out:
            for kind in KINDS:
                top, distinct, total = heaviest_edges(folder / kind.edges_file, max_edges, spill)
                graph = _graph(kind, top)
                _add_attributes(graph, folder, kind)
                report = NetworkReport(
                    name=kind.name,
                    nodes=graph.number_of_nodes(),
                    edges=graph.number_of_edges(),
                    weight=sum(weight for *_, weight in top),
                    edges_total=distinct,
                    weight_total=total,
                    max_edges=max_edges,
                )
                reports[kind.name] = report
                attributes = _graph_attributes(report)
                # GEXF has no graph attributes: the graph's name and the meta description say what was cut.
                description = _gexf_description(report)
                write_gexf(graph, out.open(folder / kind.gexf, "wb"), name=attributes["name"], description=description)
                write_graphml(graph, out.open(folder / kind.graphml, "wb"), attributes)
                view[kind.name] = network_view(graph, report, view_nodes)
            # Compact: the page fetches it.
            json.dump(view, out.open(folder / NETWORKS_VIEW), ensure_ascii=False, separators=(",", ":"))
    finally:
        shutil.rmtree(spill, ignore_errors=True)
        with contextlib.suppress(OSError):
            spill.parent.rmdir()  # the spill folder, if nothing else is in it
    return reports


# --- Counting edges ------------------------------------------------------------------------------


def heaviest_edges(path: Path, limit: int, spill_into: Path) -> tuple[list[tuple[str, str, int]], int, int]:
    """The `limit` heaviest distinct edges of an edge list (source, target, weight), heaviest
    first, ties by the row's text; the number of distinct edges; the number of rows."""
    counts: Counter = Counter()
    store: CountStore | None = None
    for lines in _row_batches(path):
        counts.update(lines)
        if len(counts) > EDGE_MEMORY:
            store = store or CountStore.create(spill_into)
            store.add_counts("edges", counts.items())
            counts.clear()
    counts.pop(b"", None)  # a blank line is no edge
    if store is not None:
        store.add_counts("edges", counts.items())
        try:
            rows = list(islice(store.count_rows("edges"), max(limit, 0)))
            distinct, total = store.distinct("edges"), store.total("edges")
        finally:
            store.close()
            store.path.unlink(missing_ok=True)
    else:
        rows = _top(counts, limit)
        distinct, total = len(counts), sum(counts.values())
    return [(*_cells(line), weight) for line, weight in rows], distinct, total


def _top(counts: Counter, limit: int) -> list[tuple[bytes, int]]:
    """The `limit` heaviest (row, weight), ties by row: only those at least as heavy as the
    limit-th weight are sorted (a key function over every edge would cost more than counting)."""
    if limit <= 0 or not counts:
        return []
    weights = heapq.nlargest(limit, counts.values())
    floor = weights[-1]
    candidates = [item for item in counts.items() if item[1] >= floor]
    candidates.sort(key=lambda item: (-item[1], item[0]))
    return candidates[:limit]


def _row_batches(path: Path) -> Iterator[list[bytes]]:
    """The data rows of a CSV file we wrote, each as its record's bytes (without the line end),
    a chunk at a time. Rows are split at CRLF while the file holds no quote (names rarely need
    one); from the first chunk that does, the csv module reads the rest, and each row is given
    back as the csv module writes it, so that a row has one text whichever way it was read."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        offset = len(handle.readline())  # where `rest` starts: after the header, then after each chunk's rows
        rest = b""
        while True:
            chunk = handle.read(_CHUNK)
            data = rest + chunk
            end = data.rfind(_CRLF) if chunk else len(data)  # the last row may lack its CRLF
            if end < 0:
                rest = data
                continue
            body = data[:end]
            if b'"' in body:
                break  # read again from `offset` by the csv module
            if body:
                yield body.split(_CRLF)
            if not chunk:
                return
            offset += end + 2
            rest = data[end + 2 :]
        handle.seek(offset)
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        batch: list[bytes] = []
        for row in csv.reader(text):
            if row:
                batch.append(_record(row))
            if len(batch) >= 10_000:
                yield batch
                batch = []
        if batch:
            yield batch


def _record(row: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue().removesuffix("\r\n").encode("utf-8")


def _cells(line: bytes) -> tuple[str, str]:
    text = line.decode("utf-8")
    cells = next(csv.reader([text]), []) if '"' in text else text.split(",", 1)
    source, target = (cells + ["", ""])[:2]
    return unneutralise(source), unneutralise(target)


# --- The graphs ----------------------------------------------------------------------------------


def _graph(kind: _Kind, edges: list[tuple[str, str, int]]) -> Network:
    graph = Network()
    for source, target, weight in edges:  # heaviest first: a node's label is its heaviest form
        source_id, target_id = "@" + source.lower(), kind.target_prefix + target.lower()
        if source_id not in graph.nodes:
            graph.add_node(source_id, label=source, kind="user")
        if target_id not in graph.nodes:
            graph.add_node(target_id, label=target, kind="user" if kind.target_prefix == "@" else "hashtag")
        graph.add_weight(source_id, target_id, weight)  # the same names in another case add up
    return graph


def _rows(path: Path) -> Iterator[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            yield from reader
    except FileNotFoundError:
        return


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _add_attributes(graph: Network, folder: Path, kind: _Kind) -> None:
    """Each node's attributes, read from the count files for the nodes of the graph only."""
    nodes = graph.nodes
    users = {node for node, data in nodes.items() if data["kind"] == "user"}
    if (folder / COUNT_AUTHORS).is_file():  # an older run has none: no posts rather than 0
        for node in users:
            nodes[node]["posts"] = 0
    for row in _rows(folder / COUNT_AUTHORS):
        node = "@" + unneutralise(row[0]).lower()
        if node in users and (posts := _number(row[1])) is not None:
            nodes[node]["posts"] += posts  # the same account under names in another case
    for row in _rows(folder / COUNT_FOLLOWERS):
        node = "@" + unneutralise(row[0]).lower()
        if node in users and "followers" not in nodes[node] and (followers := _number(row[1])) is not None:
            nodes[node]["followers"] = followers  # the file is by followers, highest first
    if kind.target_prefix == "#":
        for row in _rows(folder / COUNT_HASHTAGS):
            node = "#" + unneutralise(row[0])
            if node in nodes and (uses := _number(row[1])) is not None:
                nodes[node]["uses"] = uses


def _gexf_description(report: NetworkReport) -> str:
    """What _graph_attributes says, for GEXF, which has no graph attributes: in its meta description."""
    return (
        f"{report.name}: {report.describe()}. cut={str(report.cut).lower()} max_edges={report.max_edges} "
        f"edges_total={report.edges_total} weight_total={report.weight_total}"
    )


def _graph_attributes(report: NetworkReport) -> dict:
    return {
        "name": f"dnflow {report.name} network: {report.describe()}",
        "cut": report.cut,
        "max_edges": report.max_edges,
        "edges_total": report.edges_total,
        "weight_total": report.weight_total,
        "edges_kept": report.edges,
        "weight_kept": report.weight,
    }


# --- The page's view -----------------------------------------------------------------------------


def network_view(
    graph: Network, report: NetworkReport, view_nodes: int = VIEW_NODES, view_edges: int = VIEW_EDGES
) -> dict:
    """The `view_nodes` nodes of highest degree (neighbours, then occurrences, then name) with
    the `view_edges` heaviest edges among them and their attributes: what the summary page draws.
    `degree` is the node's in the network file; a node may have no edge in the view."""

    def rank(node: str) -> tuple:
        return (-graph.degree(node), -graph.weighted_degree(node), node)

    chosen = sorted(graph.nodes, key=rank)[:view_nodes]
    kept = set(chosen)
    nodes = []
    for node in chosen:
        data = graph.nodes[node]
        item = {"id": node, "label": data["label"], "kind": data["kind"], "degree": graph.degree(node)}
        for name in ("posts", "followers", "uses"):
            if name in data:
                item[name] = data[name]
        nodes.append(item)
    edges = [
        {"source": source, "target": target, "weight": weight}
        for source, target, weight in graph.edges()
        if source in kept and target in kept
    ]
    edges.sort(key=lambda edge: (-edge["weight"], edge["source"], edge["target"]))
    return {
        "name": report.name,
        "nodes": nodes,
        "edges": edges[:view_edges],
        "edges_among_nodes": len(edges),
        "report": {**asdict(report), "cut": report.cut, "description": report.describe()},
    }


def read_view(folder: Path) -> dict:
    """networks.json, or {} when it is missing or unreadable (an older run)."""
    try:
        data = json.loads((Path(folder) / NETWORKS_VIEW).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
