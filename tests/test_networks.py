"""The mention and hashtag networks (pipeline.networks): GEXF and GraphML that networkx reads
back with the weights and attributes counted by hand, a cap that says it cut, the same files
whether the edges were counted in memory or on disk, and the page's JSON.

Hand-made collection of tests/pipeline_helpers.py (SYNTHETIC) and the real fixture
v2-pages-twarc-network.jsonl (test data only).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import networkx as nx
import pytest

from pipeline import networks
from pipeline.contract import (
    BY_NAME,
    COUNT_AUTHORS,
    HASHTAG_EDGES,
    HASHTAGS_GEXF,
    HASHTAGS_GRAPHML,
    MENTION_EDGES,
    MENTIONS_GEXF,
    MENTIONS_GRAPHML,
    NETWORK_FILES,
    NETWORKS_VIEW,
    Access,
)
from pipeline.graphxml import Network, write_gexf, write_graphml
from pipeline.networks import heaviest_edges, write_networks
from pipeline.outputs import csv_records, unneutralise

from .pipeline_helpers import read_rows, write_v1
from .test_parallel_summarise import imported, serial


@pytest.fixture
def summarised(tmp_path):
    """The summary pass's files of the hand-made collection (v1.1)."""
    raw = imported(tmp_path, write_v1(tmp_path / "archive.jsonl"))
    serial(raw, tmp_path / "out")
    return tmp_path / "out"


def test_the_pass_counts_each_author_s_posts(summarised):
    # Ties by key in code point order: "Bob" before "alice". The duplicate 1001 does not count.
    assert read_rows(summarised / COUNT_AUTHORS) == [["user", "posts"], ["Bob", "2"], ["alice", "2"], ["carol", "1"]]


def test_the_networks_hold_the_hand_counted_weights_and_attributes(summarised):
    reports = write_networks(summarised)

    mentions = nx.read_gexf(summarised / MENTIONS_GEXF)
    assert mentions.is_directed()
    # 1001 alice -> Bob; 1002 Bob -> alice, Bob -> Bob; 1004 alice -> carol; 1005 Bob -> dave.
    assert {(u, v): d["weight"] for u, v, d in mentions.edges(data=True)} == {
        ("@alice", "@bob"): 1,
        ("@bob", "@alice"): 1,
        ("@bob", "@bob"): 1,
        ("@alice", "@carol"): 1,
        ("@bob", "@dave"): 1,
    }
    nodes = dict(mentions.nodes(data=True))
    # Posts in the collection (count-authors.csv), followers of the latest snapshot (count-followers.csv).
    assert (nodes["@alice"]["posts"], nodes["@alice"]["followers"], nodes["@alice"]["label"]) == (2, 120, "alice")
    assert (nodes["@bob"]["posts"], nodes["@bob"]["followers"], nodes["@bob"]["label"]) == (2, 11, "Bob")
    assert (nodes["@carol"]["posts"], nodes["@carol"]["followers"]) == (1, 3)
    assert nodes["@dave"]["posts"] == 0 and "followers" not in nodes["@dave"]  # only mentioned

    hashtags = nx.read_graphml(summarised / HASHTAGS_GRAPHML)
    assert {(u, v): d["weight"] for u, v, d in hashtags.edges(data=True)} == {
        ("@alice", "#climate"): 1,
        ("@alice", "#energy"): 2,
        ("@bob", "#climate"): 1,
        ("@bob", "#energy"): 1,
        ("@carol", "#energy"): 1,
    }
    assert hashtags.nodes["#energy"] == {"label": "energy", "kind": "hashtag", "uses": 4}
    assert hashtags.nodes["#climate"]["uses"] == 2
    assert hashtags.graph["cut"] is False and hashtags.graph["edges_total"] == 5

    assert not reports["mentions"].cut and reports["mentions"].edges == 5 and reports["hashtags"].weight == 6
    assert nx.read_graphml(summarised / MENTIONS_GRAPHML).number_of_edges() == 5
    assert nx.read_gexf(summarised / HASHTAGS_GEXF).number_of_nodes() == 5


def test_the_files_are_public_packaged_and_named_in_the_contract():
    for name in NETWORK_FILES:
        assert BY_NAME[name].access == Access.PUBLIC and BY_NAME[name].packaged


def test_a_network_past_its_cap_keeps_the_heaviest_edges_and_says_so(summarised):
    reports = write_networks(summarised, max_edges=2)
    report = reports["hashtags"]
    assert report.cut and (report.edges, report.edges_total, report.weight, report.weight_total) == (2, 5, 3, 6)
    assert "cut to the heaviest 2 of 5 edges (3 of 6 occurrences)" in report.describe()
    graph = nx.read_graphml(summarised / HASHTAGS_GRAPHML)
    # alice -> #energy (2) first; the ties at 1 go by the row's text: "Bob,climate" < "alice,climate".
    assert {(u, v) for u, v in graph.edges} == {("@alice", "#energy"), ("@bob", "#climate")}
    assert graph.graph["cut"] is True and graph.graph["max_edges"] == 2 and graph.graph["edges_total"] == 5
    gexf = (summarised / HASHTAGS_GEXF).read_text()
    assert "cut=true max_edges=2 edges_total=5" in gexf and "cut to the heaviest 2 of 5 edges" in gexf
    view = json.loads((summarised / NETWORKS_VIEW).read_text())
    assert view["hashtags"]["report"]["cut"] is True and view["hashtags"]["report"]["edges_total"] == 5


def test_counting_on_disk_writes_the_files_of_counting_in_memory(summarised, tmp_path, monkeypatch):
    write_networks(summarised, max_edges=3)
    expected = {name: (summarised / name).read_bytes() for name in (MENTIONS_GRAPHML, HASHTAGS_GRAPHML, NETWORKS_VIEW)}
    monkeypatch.setattr(networks, "EDGE_MEMORY", 1)
    monkeypatch.setattr(networks, "_CHUNK", 16)
    write_networks(summarised, max_edges=3)
    for name, content in expected.items():
        assert (summarised / name).read_bytes() == content, name
    assert not (summarised / ".spill").exists()


def test_names_that_need_quoting_or_were_neutralised_are_read_back_as_given(tmp_path, monkeypatch):
    rows = [["a", "b"]] * 3 + [["-dash", "=sum"], ["x,y", 'say "hi"'], ["line\nbreak", "b"], ["a", "b"]]
    # As the pass writes them: neutralised cells, CSV quoting where needed.
    written = [[("'" + cell) if cell[:1] in "-=" else cell for cell in row] for row in rows]
    path = tmp_path / MENTION_EDGES
    path.write_text("from_user,to_user\r\n" + csv_records(written), encoding="utf-8", newline="")
    for chunk in (8, 64, 1 << 20):  # the quote found in a later chunk, in the first, or all at once
        monkeypatch.setattr(networks, "_CHUNK", chunk)
        top, distinct, total = heaviest_edges(path, 10, tmp_path / "spill")
        assert (distinct, total) == (4, 7)
        # Ties by the row as written: '"line...' < '"x,y...' (quoted) < "'-dash...".
        assert top == [("a", "b", 4), ("line\nbreak", "b", 1), ("x,y", 'say "hi"', 1), ("-dash", "=sum", 1)]


def test_a_missing_edge_list_is_an_empty_network(tmp_path):
    assert heaviest_edges(tmp_path / "missing.csv", 5, tmp_path) == ([], 0, 0)
    reports = write_networks(tmp_path)
    assert (
        reports["mentions"].edges == 0 and json.loads((tmp_path / NETWORKS_VIEW).read_text())["mentions"]["nodes"] == []
    )


def test_the_page_view_of_a_real_collection_holds_the_best_connected_nodes(tmp_path, real_data):
    raw = imported(tmp_path, real_data / "v2-pages-twarc-network.jsonl")
    serial(raw, tmp_path / "out")
    write_networks(tmp_path / "out", view_nodes=60)
    view = json.loads((tmp_path / "out" / NETWORKS_VIEW).read_text())
    for name in ("mentions", "hashtags"):
        nodes, edges = view[name]["nodes"], view[name]["edges"]
        assert 0 < len(nodes) <= 60 and edges
        ids = {node["id"] for node in nodes}
        assert all(edge["source"] in ids and edge["target"] in ids for edge in edges)
        degrees = [node["degree"] for node in nodes]
        assert degrees == sorted(degrees, reverse=True)
    top_tags = {node["label"] for node in view["hashtags"]["nodes"] if node["kind"] == "hashtag"}
    assert "blacklivesmatter" in top_tags
    hub = view["hashtags"]["nodes"][0]
    assert hub["kind"] == "hashtag" and hub["uses"] >= hub["degree"]


def _edge_weights(path) -> Counter:
    """An edge list counted the plain way: (author, target) -> rows, names as the files key them."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    return Counter((source, target) for source, target in (unneutralise_row(row) for row in rows))


def unneutralise_row(row: list[str]) -> tuple[str, str]:
    return unneutralise(row[0]), unneutralise(row[1])


@pytest.mark.parametrize("fixture", ["v2-pages-twarc-network.jsonl", "v1-streaming-lines.jsonl"])
def test_the_real_collections_networks_hold_the_edge_lists_counted_independently(tmp_path, real_data, fixture):
    raw = imported(tmp_path, real_data / fixture)
    serial(raw, tmp_path / "out")
    folder = tmp_path / "out"
    reports = write_networks(folder)

    for edges_file, prefix, gexf, graphml in (
        (MENTION_EDGES, "@", MENTIONS_GEXF, MENTIONS_GRAPHML),
        (HASHTAG_EDGES, "#", HASHTAGS_GEXF, HASHTAGS_GRAPHML),
    ):
        counted = _edge_weights(folder / edges_file)
        # Nodes are keyed case-insensitively: accounts as @name, hashtags as #tag.
        expected = Counter()
        for (author, target), rows in counted.items():
            expected["@" + author.lower(), prefix + target.lower()] += rows
        assert sum(expected.values()) == sum(1 for _ in (folder / edges_file).open(encoding="utf-8")) - 1
        assert nx.read_graphml(folder / graphml).graph["cut"] is False  # every edge is in the files
        for graph in (nx.read_gexf(folder / gexf), nx.read_graphml(folder / graphml)):
            assert graph.is_directed()
            assert {(u, v): int(d["weight"]) for u, v, d in graph.edges(data=True)} == dict(expected)
    assert reports["mentions"].edges > 0 and reports["hashtags"].edges > 0


def _networkx_files(graph: Network, name: str, description: str, attributes: dict) -> tuple[bytes, bytes]:
    """What networkx 3 writes for the same graph: the GEXF and the GraphML dnflow wrote with it before."""
    from xml.etree.ElementTree import SubElement

    nx_graph = nx.DiGraph()
    for node, data in graph.nodes.items():
        nx_graph.add_node(node, **data)
    for source, target, weight in graph.edges():
        nx_graph.add_edge(source, target, weight=weight)
    nx_graph.graph.update(attributes)
    writer = nx.readwrite.gexf.GEXFWriter(encoding="utf-8", prettyprint=True, version="1.2draft")
    SubElement(writer.xml.find("meta"), "description").text = description
    writer.add_graph(nx_graph)
    gexf, graphml = io.BytesIO(), io.BytesIO()
    writer.write(gexf)
    nx.write_graphml(nx_graph, graphml, encoding="utf-8")
    creator = f"<creator>NetworkX {nx.__version__}</creator>".encode()
    return gexf.getvalue().replace(creator, b"<creator>dnflow</creator>"), graphml.getvalue()


def test_the_files_are_what_networkx_writes_for_the_same_graph_awkward_names_included():
    """pipeline.graphxml writes the GEXF and GraphML networkx wrote before it (but for the creator's
    name), escaping included: names with markup, quotes, ampersands, tabs and line breaks, non-ASCII,
    a loop, and names that differ only in case (one node, the weights added up)."""
    awkward = ["Zoë", 'say "hi"', "a&b", "<script>", "tab\there", "line\nbreak", "cr\rx", "日本語", "ZOË"]
    edges = [(awkward[i % 4], awkward[(i * 5 + 1) % len(awkward)], 20 - i) for i in range(18)]
    edges.append(("loop", "loop", 3))
    for kind in networks.KINDS:
        graph = networks._graph(kind, edges)
        for position, node in enumerate(graph.nodes):
            graph.nodes[node]["posts" if position % 2 else "uses"] = position
            if position % 3 == 0:
                graph.nodes[node]["followers"] = position * 1000
        attributes = {"name": 'dnflow <test> & "network"', "cut": True, "max_edges": 5000, "edges_total": 7}
        gexf, graphml = io.BytesIO(), io.BytesIO()
        write_gexf(graph, gexf, name=attributes["name"], description="a & b <c>")
        write_graphml(graph, graphml, attributes)
        expected_gexf, expected_graphml = _networkx_files(graph, attributes["name"], "a & b <c>", attributes)
        assert gexf.getvalue() == expected_gexf
        assert graphml.getvalue() == expected_graphml
        read = nx.read_graphml(io.BytesIO(graphml.getvalue()))
        assert read.nodes["@zoë"]["label"] == "Zoë" and read.graph["cut"] is True
        assert sum(d["weight"] for *_, d in read.edges(data=True)) == sum(w for *_, w in edges)
        # Degrees as networkx counts them (a loop twice): the page's view ranks nodes by them.
        for node in graph.nodes:
            assert graph.degree(node) == read.degree(node)
            assert graph.weighted_degree(node) == read.degree(node, weight="weight")


def test_empty_networks_and_mixed_attribute_types_are_written_as_networkx_writes_them():
    """A collection without mentions has an empty network; a lone node has no edge; an attribute
    whose values differ in type gets a key per type in GraphML."""
    empty = networks._graph(networks.KINDS[0], [])
    lone = Network()
    lone.add_node("@a", label="a", kind="user", posts=3)
    lone.add_node("@b", label="b", kind="user", posts="unknown")
    for graph in (empty, lone):
        attributes = {"name": "n", "cut": False}
        gexf, graphml = io.BytesIO(), io.BytesIO()
        write_gexf(graph, gexf, name="n", description="d")
        write_graphml(graph, graphml, attributes)
        expected_gexf, expected_graphml = _networkx_files(graph, "n", "d", attributes)
        assert (gexf.getvalue(), graphml.getvalue()) == (expected_gexf, expected_graphml)
        assert nx.read_graphml(io.BytesIO(graphml.getvalue())).number_of_nodes() == len(graph.nodes)
