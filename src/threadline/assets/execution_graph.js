// The execution-graph page: lays out the state machine with dagre, colours states by outcome,
// shows a clicked state's details and lists the history events. Every text from the execution
// goes in with textContent, never as markup.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const data = JSON.parse(document.getElementById("execution-data").textContent);
  const byId = new Map(data.nodes.map((node) => [node.id, node]));
  const OUTCOME_WORDS = {
    succeeded: "succeeded", failed: "failed: the run failed here", caught: "failed, caught",
    "not-entered": "not entered", "in-progress": "in progress", structure: "",
  };

  function element(tag, attributes, text) {
    const made = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) made.setAttribute(key, value);
    if (text !== undefined && text !== null) made.textContent = String(text);
    return made;
  }

  function svgElement(tag, attributes) {
    const made = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes || {})) made.setAttribute(key, String(value));
    return made;
  }

  function pretty(text) {
    if (text === null || text === undefined || text === "") return "";
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (error) {
      return String(text);
    }
  }

  function seconds(value) {
    return value === null || value === undefined ? "" : Number(value).toFixed(3) + " s";
  }

  // Layout -------------------------------------------------------------------------------
  const measure = document.createElement("canvas").getContext("2d");
  measure.font = "13px sans-serif";

  function size(node) {
    if (node.type === "Start" || node.type === "End") return { width: 64, height: 30 };
    if (node.type === "Join") return { width: 14, height: 14 };
    return { width: Math.ceil(measure.measureText(node.name).width) + 36, height: 36 };
  }

  const GROUP_LABEL = 18;  // the height of a branch group's label
  const EDGE_WEIGHT = { next: 4, default: 2, choice: 2, branch: 2, end: 1, catch: 1 };
  const layout = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  layout.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 38, edgesep: 14, marginx: 16, marginy: 16 });
  layout.setDefaultEdgeLabel(() => ({}));
  for (const node of data.nodes) {
    layout.setNode(node.id, node.type === "Group" ? { label: node.name } : size(node));
  }
  for (const node of data.nodes) if (node.parent) layout.setParent(node.id, node.parent);
  // One layout edge per pair of states: a Catch to where `Next` goes too runs along the same line.
  const pairs = new Map();
  for (const edge of data.edges) {
    const key = edge.source + "\u0000" + edge.target;
    if (!pairs.has(key)) pairs.set(key, []);
    pairs.get(key).push(edge);
  }
  for (const [key, edges] of pairs) {
    const weight = Math.max(...edges.map((edge) => EDGE_WEIGHT[edge.kind] || 1));
    layout.setEdge(edges[0].source, edges[0].target, { weight: weight }, key);
  }
  dagre.layout(layout);

  // Drawing ------------------------------------------------------------------------------
  // dagre's graph size leaves out edge bends; the picture's box takes in every node and bend.
  const box = { left: Infinity, top: Infinity, right: -Infinity, bottom: -Infinity };
  function include(x, y) {
    box.left = Math.min(box.left, x); box.top = Math.min(box.top, y);
    box.right = Math.max(box.right, x); box.bottom = Math.max(box.bottom, y);
  }
  for (const id of layout.nodes()) {
    const placed = layout.node(id);
    const label = byId.get(id).type === "Group" ? GROUP_LABEL : 0;
    include(placed.x - placed.width / 2, placed.y - placed.height / 2 - label);
    include(placed.x + placed.width / 2, placed.y + placed.height / 2);
  }
  for (const ends of layout.edges()) for (const point of layout.edge(ends).points) include(point.x, point.y);
  const width = Math.ceil(box.right - box.left + 24), height = Math.ceil(box.bottom - box.top + 24);
  const svg = svgElement("svg", {
    width: width, height: height, viewBox: [box.left - 12, box.top - 12, width, height].join(" "), role: "img",
    "aria-label": "state machine graph",
  });
  const defs = svgElement("defs");
  for (const kind of ["plain", "taken", "catch"]) {
    const marker = svgElement("marker", {
      id: "arrow-" + kind, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9,
      markerUnits: "userSpaceOnUse", orient: "auto-start-reverse",
    });
    marker.appendChild(svgElement("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow " + kind }));
    defs.appendChild(marker);
  }
  svg.appendChild(defs);

  for (const node of data.nodes) {
    if (node.type !== "Group") continue;
    const placed = layout.node(node.id);
    const group = svgElement("g", { class: "group" });
    const top = placed.y - placed.height / 2 - GROUP_LABEL;  // dagre keeps no room for a label: add it above
    group.appendChild(svgElement("rect", {
      x: placed.x - placed.width / 2, y: top, width: placed.width, height: placed.height + GROUP_LABEL, rx: 8,
    }));
    const label = svgElement("text", { x: placed.x - placed.width / 2 + 8, y: top + 14 });
    label.textContent = node.name;
    group.appendChild(label);
    svg.appendChild(group);
  }

  function curve(points) {
    let path = "M" + points[0].x + "," + points[0].y;
    for (let index = 1; index < points.length - 1; index += 1) {
      const next = points[index + 1];
      const middle = index + 1 === points.length - 1 ? next : {
        x: (points[index].x + next.x) / 2, y: (points[index].y + next.y) / 2 };
      path += " Q" + points[index].x + "," + points[index].y + " " + middle.x + "," + middle.y;
    }
    if (points.length === 2) path += " L" + points[1].x + "," + points[1].y;
    return path;
  }

  const edgeLayer = svgElement("g", { class: "edges" });
  const drawn = [...pairs].map(([key, edges]) => [key, edges.find((edge) => edge.taken) ||
    edges.find((edge) => edge.kind !== "catch") || edges[0], edges]);
  drawn.sort((a, b) => a[1].taken - b[1].taken);  // the path taken on top
  for (const [key, edge, edges] of drawn) {
    const placed = layout.edge({ v: edge.source, w: edge.target, name: key });
    const kind = edge.taken ? "taken" : (edge.kind === "catch" ? "catch" : "plain");
    const path = svgElement("path", {
      d: curve(placed.points), class: "edge " + edge.kind + (edge.taken ? " taken" : ""),
      "marker-end": "url(#arrow-" + kind + ")",
    });
    path.dataset.source = edge.source;
    path.dataset.target = edge.target;
    const title = svgElement("title");
    title.textContent = edge.source + " \u2192 " + edge.target + " (" +
      edges.map((each) => each.kind + (each.label ? " " + each.label : "")).join("; ") + ")";
    path.appendChild(title);
    edgeLayer.appendChild(path);
  }
  svg.appendChild(edgeLayer);

  const stateElements = new Map();
  for (const node of data.nodes) {
    if (node.type === "Group") continue;
    const placed = layout.node(node.id);
    const group = svgElement("g", {
      class: "state " + node.outcome + " type-" + node.type.toLowerCase(),
      transform: "translate(" + (placed.x - placed.width / 2) + "," + (placed.y - placed.height / 2) + ")",
    });
    group.dataset.state = node.id;
    group.appendChild(svgElement("rect", {
      width: placed.width, height: placed.height,
      rx: node.type === "Start" || node.type === "End" || node.type === "Join" ? placed.height / 2 : 6,
    }));
    if (node.name) {
      const label = svgElement("text", { x: placed.width / 2, y: placed.height / 2 + 4.5, "text-anchor": "middle" });
      label.textContent = node.name;
      group.appendChild(label);
    }
    if (node.outcome !== "structure") {
      group.setAttribute("tabindex", "0");
      group.setAttribute("role", "button");
      const title = svgElement("title");
      title.textContent = node.name + " (" + node.type + "): " + OUTCOME_WORDS[node.outcome];
      group.appendChild(title);
      group.addEventListener("click", () => select(node.id));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          select(node.id);
        }
      });
      stateElements.set(node.id, group);
    }
    svg.appendChild(group);
  }
  const graphBox = document.getElementById("graph");
  graphBox.appendChild(svg);
  const start = layout.node(data.nodes[0].id);  // Start: in view when the page opens
  graphBox.scrollLeft = (start.x - box.left) - graphBox.clientWidth / 2;

  let scale = 1;
  function zoom(factor) {
    scale = factor === null ? Math.min(1, graphBox.clientWidth / width) : Math.min(2, Math.max(0.2, scale * factor));
    svg.setAttribute("width", Math.round(width * scale));
    svg.setAttribute("height", Math.round(height * scale));
  }
  document.getElementById("zoom-in").addEventListener("click", () => zoom(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(0.8));
  document.getElementById("zoom-fit").addEventListener("click", () => zoom(null));

  // Details ------------------------------------------------------------------------------
  const panel = document.getElementById("details");

  function section(title, text) {
    if (!text) return;
    panel.appendChild(element("h3", {}, title));
    panel.appendChild(element("pre", { class: "value " + title.toLowerCase() }, pretty(text)));
  }

  function table(headings, rows, className) {
    const blank = (cell) => cell === null || cell === undefined || cell === "";
    const kept = headings.map((_, column) => rows.some((row) => !blank(row[column])));  // no empty columns
    const made = element("table", { class: className });
    const head = made.createTHead().insertRow();
    headings.forEach((heading, column) => { if (kept[column]) head.appendChild(element("th", {}, heading)); });
    const body = made.createTBody();
    for (const row of rows) {
      const line = body.insertRow();
      row.forEach((cell, column) => {
        if (kept[column]) line.insertCell().textContent = blank(cell) ? "" : String(cell);
      });
    }
    return made;
  }

  function showExecution() {
    panel.replaceChildren();
    const run = data.execution;
    panel.appendChild(element("h2", {}, "Execution " + (run.name || "")));
    panel.appendChild(element("p", { class: "status " + String(run.status).toLowerCase() },
      (run.status || "") + (run.seconds !== null ? " in " + seconds(run.seconds) : "")));
    panel.appendChild(element("p", { class: "hint" }, "Click a state to see its input, output and attempts."));
    section("Error", run.error);
    section("Cause", run.cause);
    section("Input", run.input);
    section("Output", run.output);
  }

  function select(id) {
    const node = byId.get(id);
    for (const [name, shown] of stateElements) shown.classList.toggle("selected", name === id);
    stateElements.get(id).scrollIntoView({ block: "nearest", inline: "nearest" });
    panel.replaceChildren();
    panel.appendChild(element("h2", {}, node.name));
    panel.appendChild(element("p", { class: "status " + node.outcome },
      node.type + " state: " + OUTCOME_WORDS[node.outcome]));
    if (node.resource) panel.appendChild(element("p", { class: "resource" }, node.resource));
    const last = node.visits[node.visits.length - 1];
    if (!last) {
      panel.appendChild(element("p", { class: "hint" }, "The execution did not enter this state."));
      return;
    }
    panel.appendChild(table(["entered at (s)", "duration", "tries", "result"], node.visits.map((visit) => [
      visit.elapsed.toFixed(3), visit.exited ? seconds(visit.seconds) : "running",
      visit.tries || "", visit.failed ? (visit.error || "failed") : (visit.exited ? "ok" : ""),
    ]), "visits"));
    if (node.attempts.length) {
      panel.appendChild(element("h3", {}, "Batch attempts"));
      panel.appendChild(table(["job id", "#", "queue", "capacity", "nodes", "status reason", "exit code", "duration"],
        node.attempts.map((attempt) => [
          attempt.job_id, attempt.attempt || attempt.job_status, attempt.queue, attempt.capacity, attempt.nodes,
          attempt.status_reason, attempt.exit_code, seconds(attempt.seconds),
        ]), "attempts"));
    }
    section("Error", last.error);
    section("Cause", last.cause);
    section("Input", last.input);
    section("Output", last.output);
  }

  document.getElementById("show-execution").addEventListener("click", () => {
    for (const shown of stateElements.values()) shown.classList.remove("selected");
    showExecution();
  });

  // Events -------------------------------------------------------------------------------
  const body = document.querySelector("#events tbody");
  for (const row of data.events) {
    const line = body.insertRow();
    line.insertCell().textContent = row.id;
    line.insertCell().textContent = row.type;
    const state = line.insertCell();
    if (row.state && stateElements.has(row.state)) {
      const link = element("button", { type: "button", class: "link" }, row.state);
      link.addEventListener("click", () => select(row.state));
      state.appendChild(link);
    } else {
      state.textContent = row.state || "";
    }
    line.insertCell().textContent = row.time;
    line.insertCell().textContent = row.elapsed.toFixed(3);
    line.insertCell().textContent = row.detail;
    if (/Failed|TimedOut|Aborted/.test(row.type)) line.classList.add("failure");
  }

  showExecution();
})();
