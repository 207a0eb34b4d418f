"""A directed, weighted network and the two files Gephi and friends read: GEXF 1.2 and GraphML.

The files are what networkx 3 writes for the same graph (element for element, attribute ids and
types included, so its readers and Gephi see the same network), written as text directly: networkx
builds an ElementTree of every node and edge first, and its import alone (with numpy) took a
quarter of a second of every search, the writing about 30,000 edges a second.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

CREATOR = "dnflow"


class Network:
    """Nodes (id -> attributes, in the order added) and weighted directed edges (in the order of
    their source node, then of adding), as networkx's DiGraph iterates them."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict] = {}
        self.successors: dict[str, dict[str, int]] = {}
        self._degree: dict[str, int] = {}
        self._weighted_degree: dict[str, int] = {}

    def add_node(self, node: str, **attributes) -> None:
        self.nodes[node] = attributes
        self.successors[node] = {}
        self._degree[node] = self._weighted_degree[node] = 0

    def add_weight(self, source: str, target: str, weight: int) -> None:
        """Add `weight` to the edge source -> target, making it if it is new (both nodes exist)."""
        edges = self.successors[source]
        if target not in edges:
            edges[target] = 0
            self._degree[source] += 1
            self._degree[target] += 1
        edges[target] += weight
        self._weighted_degree[source] += weight
        self._weighted_degree[target] += weight

    def edges(self) -> Iterator[tuple[str, str, int]]:
        for source, targets in self.successors.items():
            for target, weight in targets.items():
                yield source, target, weight

    def number_of_nodes(self) -> int:
        return len(self.nodes)

    def number_of_edges(self) -> int:
        return sum(len(targets) for targets in self.successors.values())

    def degree(self, node: str) -> int:
        """Edges in and out (a loop counts twice), as networkx's DiGraph.degree."""
        return self._degree[node]

    def weighted_degree(self, node: str) -> int:
        return self._weighted_degree[node]


# The characters ElementTree escapes; most names hold none, and one search says so (a generator
# over the characters took a sixth of the step).
_ATTRIBUTE_SPECIAL = re.compile('[&<>"\r\n\t]')
_TEXT_SPECIAL = re.compile("[&<>]")


def _attribute(value) -> str:
    """An attribute value as ElementTree escapes it."""
    text = str(value)
    if _ATTRIBUTE_SPECIAL.search(text):
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
        text = text.replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#09;")
    return text


def _text(value) -> str:
    """Element text as ElementTree escapes it."""
    text = str(value)
    if _TEXT_SPECIAL.search(text):
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _xml_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    return "string"


_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"


def write_gexf(network: Network, handle, *, name: str, description: str) -> None:
    """GEXF 1.2draft: nodes with a label and typed attributes, edges with their weight. GEXF has no
    graph attributes: `name` goes on the graph, `description` in its meta."""
    attribute_ids: dict[str, str] = {}
    attribute_types: dict[str, str] = {}
    for data in network.nodes.values():
        for key, value in data.items():
            if key != "label" and key not in attribute_ids:
                attribute_ids[key] = str(len(attribute_ids))
                attribute_types[key] = _xml_type(value)
    out = [
        _DECLARATION,
        '<gexf xmlns="http://www.gexf.net/1.2draft" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.gexf.net/1.2draft http://www.gexf.net/1.2draft/gexf.xsd" version="1.2">\n',
        f'  <meta lastmodifieddate="{time.strftime("%Y-%m-%d")}">\n',
        f"    <creator>{CREATOR}</creator>\n",
        f"    <description>{_text(description)}</description>\n",
        "  </meta>\n",
        f'  <graph defaultedgetype="directed" mode="static" name="{_attribute(name)}">\n',
    ]
    if attribute_ids:
        out.append('    <attributes mode="static" class="node">\n')
        out.extend(
            f'      <attribute id="{attribute_id}" title="{_attribute(key)}" type="{attribute_types[key]}" />\n'
            for key, attribute_id in attribute_ids.items()
        )
        out.append("    </attributes>\n")
    out.append("    <nodes>\n" if network.nodes else "    <nodes />\n")
    for node, data in network.nodes.items():
        label = _attribute(data.get("label", node))
        values = [
            f'          <attvalue for="{attribute_ids[key]}" value="{_gexf_value(value)}" />\n'
            for key, value in data.items()
            if key != "label"
        ]
        if values:
            out.append(f'      <node id="{_attribute(node)}" label="{label}">\n        <attvalues>\n')
            out.extend(values)
            out.append("        </attvalues>\n      </node>\n")
        else:
            out.append(f'      <node id="{_attribute(node)}" label="{label}" />\n')
    edges = [
        f'      <edge source="{_attribute(source)}" target="{_attribute(target)}" id="{number}" weight="{weight}" />\n'
        for number, (source, target, weight) in enumerate(network.edges())
    ]
    if network.nodes:
        out.append("    </nodes>\n")
    out.extend(["    <edges>\n", *edges, "    </edges>\n"] if edges else ["    <edges />\n"])
    out.append("  </graph>\n</gexf>\n")
    handle.write("".join(out).encode("utf-8"))


def _gexf_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else _attribute(value)


def write_graphml(network: Network, handle, graph_attributes: dict) -> None:
    """GraphML: typed keys for the graph's, the nodes' and the edges' attributes (`weight`)."""
    # (for, name, type) -> key id, numbered as met: the graph's, the nodes', the edges'. An
    # attribute with values of two types has two keys, as networkx gives it.
    keys: dict[tuple[str, str, str], str] = {}
    declared: list[str] = []

    def key(scope: str, name: str, value) -> str:
        kind = _xml_type(value)
        if (scope, name, kind) not in keys:
            keys[scope, name, kind] = f"d{len(keys)}"
            declared.append(
                f'  <key id="{keys[scope, name, kind]}" for="{scope}" attr.name="{_attribute(name)}" '
                f'attr.type="{kind}" />\n'
            )
        return keys[scope, name, kind]

    graph_data = [
        f'    <data key="{key("graph", name, value)}">{_text(value)}</data>\n'
        for name, value in graph_attributes.items()
    ]
    body = ['  <graph edgedefault="directed">\n']
    for node, data in network.nodes.items():
        body.append(f'    <node id="{_attribute(node)}">\n')
        body.extend(
            f'      <data key="{key("node", name, value)}">{_text(value)}</data>\n' for name, value in data.items()
        )
        body.append("    </node>\n")
    for source, target, weight in network.edges():
        body.append(
            f'    <edge source="{_attribute(source)}" target="{_attribute(target)}">\n'
            f'      <data key="{key("edge", "weight", weight)}">{weight}</data>\n'
            "    </edge>\n"
        )
    body.extend(graph_data)
    body.append("  </graph>\n</graphml>\n")
    head = [
        _DECLARATION,
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
        'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n',
        *reversed(declared),  # networkx puts each new key first
    ]
    handle.write("".join(head + body).encode("utf-8"))
