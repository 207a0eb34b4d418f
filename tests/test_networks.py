"""The mention and hashtag networks (pipeline.networks): GEXF and GraphML that networkx reads
back with the weights and attributes counted by hand, a cap that says it cut, the same files
whether the edges were counted in memory or on disk, and the page's JSON.

Hand-made collection of tests/pipeline_helpers.py (SYNTHETIC) and the real fixture
v2-pages-twarc-network.jsonl (test data only).
"""

from __future__ import annotations

import json

import networkx as nx
import pytest

from pipeline import networks
from pipeline.contract import (
    BY_NAME,
    COUNT_AUTHORS,
    HASHTAGS_GEXF,
    HASHTAGS_GRAPHML,
    MENTION_EDGES,
    MENTIONS_GEXF,
    MENTIONS_GRAPHML,
    NETWORK_FILES,
    NETWORKS_VIEW,
    Access,
)
from pipeline.networks import heaviest_edges, write_networks
from pipeline.outputs import csv_records

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
