/* dnflow: the summary page's network view (mentions, hashtags), drawn with the vendored Cytoscape.js.
 *
 * Markup (the page keeps a table of the same data beside it for readers without JavaScript):
 *
 *   <div class="network-view" data-network-url="/searches/7/files/networks.json" data-network="mentions"></div>
 *   <div class="network-view" data-network-source="mentions-data" data-network="mentions"></div>
 *   <script type="application/json" id="mentions-data">{...networks.json...}</script>
 *
 *   <script src="/static/vendor/cytoscape.min.js" defer></script>
 *   <script src="/static/dnflow/network.js" defer></script>
 *
 * The JSON is pipeline/networks.py's networks.json (an object of networks by name; data-network
 * picks one) or one of its networks. Each node: id, label, kind ("user" or "hashtag"), degree, and
 * posts, followers or uses; each edge: source, target, weight.
 *
 * What it does: draws the nodes (size by degree, colour by kind) and edges (width by weight);
 * zoom and pan; hovering a node shows its name and attributes; clicking one highlights it and its
 * neighbours (clicking empty space clears); a legend says what size, colour and width mean.
 * Without JavaScript, or without Cytoscape, or if the JSON cannot be read, the element stays empty.
 * When drawn, the element gets data-network-ready="true", `element.dnflowNetwork` (the Cytoscape
 * instance) and a "dnflow:network-ready" event.
 */
(function () {
  "use strict";

  var COLOURS = { user: "#1f5fbf", hashtag: "#c25400" };
  var MIN_SIZE = 12;
  var MAX_SIZE = 46;
  var HEIGHT = "28rem";
  var LABELLED = 25; // the best-connected nodes carry their name; the others show it on hover

  function number(value) {
    return typeof value === "number" && isFinite(value) ? value.toLocaleString() : null;
  }

  function scale(value, low, high, from, to) {
    if (high <= low) {
      return (from + to) / 2;
    }
    return from + ((Math.sqrt(value) - Math.sqrt(low)) / (Math.sqrt(high) - Math.sqrt(low))) * (to - from);
  }

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) {
      element.className = className;
    }
    if (text !== undefined) {
      element.textContent = text;
    }
    return element;
  }

  function pick(data, name) {
    if (data && Array.isArray(data.nodes)) {
      return data;
    }
    if (data && name && data[name] && Array.isArray(data[name].nodes)) {
      return data[name];
    }
    return null;
  }

  function describe(node) {
    var lines = [node.kind === "hashtag" ? "#" + node.label : "@" + node.label];
    var posts = number(node.posts);
    var followers = number(node.followers);
    var uses = number(node.uses);
    if (posts !== null) {
      lines.push(posts + " posts in the collection");
    }
    if (followers !== null) {
      lines.push(followers + " followers");
    }
    if (uses !== null) {
      lines.push("used " + uses + " times");
    }
    lines.push(number(node.degree) + (node.degree === 1 ? " connection" : " connections"));
    return lines;
  }

  function legend(network, degrees, weights) {
    var box = make("div", "network-legend");
    box.style.cssText = "display:flex;flex-wrap:wrap;gap:0.4rem 1.2rem;align-items:center;font-size:0.85rem;margin-top:0.4rem";
    var kinds = {};
    network.nodes.forEach(function (node) {
      kinds[node.kind] = true;
    });
    Object.keys(COLOURS).forEach(function (kind) {
      if (!kinds[kind]) {
        return;
      }
      var item = make("span", "network-legend-kind");
      var dot = make("span");
      dot.style.cssText = "display:inline-block;width:0.8rem;height:0.8rem;border-radius:50%;margin-right:0.3rem;vertical-align:middle;background:" + COLOURS[kind];
      item.appendChild(dot);
      item.appendChild(document.createTextNode(kind === "user" ? "account" : "hashtag"));
      box.appendChild(item);
    });
    var sizes = make("span", "network-legend-size", "size:");
    [degrees[0], degrees[1]].forEach(function (degree, index) {
      var circle = make("span");
      var shown = Math.round((index === 0 ? MIN_SIZE : MAX_SIZE) * 0.6);
      circle.style.cssText = "display:inline-block;border:1px solid #55606e;border-radius:50%;vertical-align:middle;margin:0 0.3rem;width:" + shown + "px;height:" + shown + "px";
      sizes.appendChild(circle);
      sizes.appendChild(document.createTextNode(index === 0 ? number(degree) + " to" : number(degree) + " connections"));
    });
    box.appendChild(sizes);
    var width = make("span", "network-legend-width", "line width: " + number(weights[0]) + " to " + number(weights[1]) + " times");
    box.appendChild(width);
    var shown = make(
      "span",
      "network-legend-note",
      "the " + network.nodes.length + " best-connected nodes" + (network.report && network.report.cut ? " of a network cut to its heaviest edges" : "")
    );
    shown.style.color = "#55606e";
    box.appendChild(shown);
    box.appendChild(make("span", "network-legend-help", "scroll to zoom, drag to pan, click a node to see its neighbours"));
    return box;
  }

  function draw(container, network) {
    if (!network.nodes.length) {
      return;
    }
    var degrees = [Infinity, 0];
    network.nodes.forEach(function (node) {
      degrees = [Math.min(degrees[0], node.degree || 0), Math.max(degrees[1], node.degree || 0)];
    });
    var weights = [Infinity, 0];
    network.edges.forEach(function (edge) {
      weights = [Math.min(weights[0], edge.weight), Math.max(weights[1], edge.weight)];
    });
    if (!network.edges.length) {
      weights = [0, 0];
    }
    var known = {};
    var elements = [];
    network.nodes.forEach(function (node, index) {
      known[node.id] = node;
      elements.push({
        group: "nodes",
        data: {
          id: node.id,
          label: index < LABELLED ? (node.kind === "hashtag" ? "#" : "") + node.label : "",
          colour: COLOURS[node.kind] || "#55606e",
          size: scale(node.degree || 0, degrees[0], degrees[1], MIN_SIZE, MAX_SIZE),
        },
      });
    });
    network.edges.forEach(function (edge, index) {
      if (known[edge.source] && known[edge.target]) {
        elements.push({
          group: "edges",
          data: {
            id: "e" + index,
            source: edge.source,
            target: edge.target,
            weight: edge.weight,
            width: scale(edge.weight, weights[0], weights[1], 0.6, 6),
          },
        });
      }
    });

    var canvas = make("div", "network-canvas");
    canvas.style.cssText = "position:relative;height:" + HEIGHT + ";border:1px solid #d5dbe2;border-radius:6px;background:#fff";
    var tip = make("div", "network-tooltip");
    tip.setAttribute("role", "status");
    tip.style.cssText = "position:absolute;z-index:10;pointer-events:none;display:none;max-width:18rem;padding:0.35rem 0.55rem;border-radius:4px;background:#1d232b;color:#fff;font-size:0.85rem;line-height:1.35";
    container.appendChild(canvas);
    container.appendChild(legend(network, degrees, weights));

    var cy = window.cytoscape({
      container: canvas,
      elements: elements,
      minZoom: 0.1,
      maxZoom: 6,
      style: [
        {
          selector: "node",
          style: {
            "background-color": "data(colour)",
            width: "data(size)",
            height: "data(size)",
            label: "data(label)",
            "font-size": 9,
            color: "#1d232b",
            "text-valign": "bottom",
            "text-margin-y": 2,
            "min-zoomed-font-size": 7,
            "border-width": 0,
          },
        },
        {
          selector: "edge",
          style: {
            width: "data(width)",
            "line-color": "#9aa5b1",
            "target-arrow-color": "#9aa5b1",
            "target-arrow-shape": "triangle",
            "arrow-scale": 0.6,
            "curve-style": "bezier",
            opacity: 0.55,
          },
        },
        { selector: ".faded", style: { opacity: 0.12 } },
        { selector: "node.neighbour", style: { "border-width": 2, "border-color": "#f5b400" } },
        { selector: "node.chosen", style: { "border-width": 4, "border-color": "#f5b400" } },
        { selector: "edge.neighbour", style: { opacity: 0.9, "line-color": "#f5b400", "target-arrow-color": "#f5b400" } },
      ],
      layout: { name: "cose", animate: false, randomize: false, nodeDimensionsIncludeLabels: false, numIter: 1500 },
    });
    canvas.appendChild(tip);

    function clear() {
      cy.elements().removeClass("faded neighbour chosen");
    }

    cy.on("mouseover", "node", function (event) {
      var node = known[event.target.id()];
      tip.textContent = "";
      describe(node).forEach(function (line, index) {
        var row = make("div", null, line);
        if (index === 0) {
          row.style.fontWeight = "bold";
        }
        tip.appendChild(row);
      });
      var at = event.target.renderedPosition();
      tip.style.left = Math.round(at.x + 12) + "px";
      tip.style.top = Math.round(at.y + 12) + "px";
      tip.style.display = "block";
      canvas.style.cursor = "pointer";
    });
    cy.on("mouseout", "node", function () {
      tip.style.display = "none";
      canvas.style.cursor = "";
    });
    cy.on("tap", function (event) {
      clear();
      if (event.target === cy) {
        return; // empty space: nothing highlighted
      }
      if (event.target.isNode()) {
        var around = event.target.closedNeighborhood();
        cy.elements().not(around).addClass("faded");
        around.addClass("neighbour");
        event.target.removeClass("neighbour").addClass("chosen");
      }
    });

    container.dnflowNetwork = cy;
    container.setAttribute("data-network-ready", "true");
    container.dispatchEvent(new CustomEvent("dnflow:network-ready", { bubbles: true, detail: { cy: cy } }));
  }

  function load(container) {
    var name = container.getAttribute("data-network");
    var source = container.getAttribute("data-network-source");
    if (source) {
      var script = document.getElementById(source);
      var data = null;
      try {
        data = script ? JSON.parse(script.textContent) : null;
      } catch (error) {
        data = null; // unreadable: the page's table stands in
      }
      var network = pick(data, name);
      if (network) {
        draw(container, network);
      }
      return;
    }
    var url = container.getAttribute("data-network-url");
    if (!url || !window.fetch) {
      return;
    }
    window
      .fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        var network = pick(data, name);
        if (network) {
          draw(container, network);
        }
      })
      .catch(function () {
        // No network view: the page's table stands in.
      });
  }

  function start() {
    if (typeof window.cytoscape !== "function") {
      return;
    }
    var containers = document.querySelectorAll("[data-network-url], [data-network-source]");
    Array.prototype.forEach.call(containers, load);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
