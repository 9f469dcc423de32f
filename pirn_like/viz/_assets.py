"""The HTML report's inline stylesheet and script (no external assets)."""

__all__ = ["CSS", "SCRIPT"]

CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 12px 20px; background: #fff; border-bottom: 1px solid #ddd; }
header h1 { font-size: 18px; margin: 0 0 4px; }
header .meta { color: #555; font-size: 13px; }
.status-succeeded { color: #2e8b57; } .status-failed { color: #c0392b; }
main { display: flex; gap: 16px; padding: 16px 20px; align-items: flex-start; }
.left { flex: 1 1 auto; min-width: 0; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px;
  margin-bottom: 16px; overflow: auto; }
section h2 { font-size: 14px; margin: 0 0 8px; }
#details { flex: 0 0 380px; position: sticky; top: 12px; }
#details dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 10px;
  font-size: 12px; margin: 0; }
#details dt { color: #666; } #details dd { margin: 0; word-break: break-all; }
#details pre { font-size: 11px; background: #f6f0f0; padding: 8px; overflow: auto;
  max-height: 320px; white-space: pre-wrap; }
#details .hint { color: #777; font-size: 13px; }
.filters button { border: 1px solid #bbb; background: #f2f2f2; border-radius: 12px;
  padding: 3px 10px; margin-right: 6px; cursor: pointer; font-size: 12px; }
.filters button[aria-pressed="false"] { opacity: .45; text-decoration: line-through; }
.knot, .bar { cursor: pointer; }
.knot:hover rect, .knot:focus rect { filter: brightness(.93); }
.knot.selected rect { stroke: #1a4fd6; stroke-width: 3; }
.hidden { display: none; }
a.goto { color: #1a4fd6; cursor: pointer; }
"""

# Reads the knots from the JSON block and fills the details panel with textContent
# only: nothing from the run is ever parsed as markup.
SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("pirn-data").textContent);
  var panel = document.getElementById("details-body");
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function link(index) {
    var a = el("a", data.knots[index].id, "goto");
    a.href = "#";
    a.setAttribute("data-goto", String(index));
    a.addEventListener("click", function (e) { e.preventDefault(); select(index); });
    return a;
  }
  function field(dl, name, value) {
    if (value === undefined || value === null || value === "") return;
    dl.appendChild(el("dt", name));
    var dd = el("dd");
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = String(value);
    dl.appendChild(dd);
  }
  function select(index) {
    var k = data.knots[index];
    document.querySelectorAll(".knot.selected").forEach(function (n) {
      n.classList.remove("selected");
    });
    var g = document.querySelector('.knot[data-knot="' + index + '"]');
    if (g) g.classList.add("selected");
    panel.textContent = "";
    panel.appendChild(el("h3", k.id, "knot-id"));
    var dl = el("dl");
    field(dl, "class", k.knot_class);
    field(dl, "outcome", k.outcome);
    field(dl, "skip reason", k.skip_reason);
    field(dl, "skip detail", k.skip_detail);
    field(dl, "duration", k.duration_ms === null ? null : k.duration_ms.toFixed(2) + " ms");
    field(dl, "started", k.started_at);
    field(dl, "dispatcher", k.dispatcher);
    field(dl, "attempts", k.attempts);
    field(dl, "config hash", k.config_hash);
    field(dl, "execution hash", k.execution_hash);
    field(dl, "output hash", k.output_hash);
    field(dl, "cached from run", k.cached_from);
    k.inputs.forEach(function (input) {
      var span = el("span");
      if (input.parent_index !== null) span.appendChild(link(input.parent_index));
      else span.appendChild(el("span", input.parent));
      if (input.hash) span.appendChild(el("div", input.hash));
      field(dl, "input " + input.name, span);
    });
    if (k.children.length) {
      var used = el("span");
      k.children.forEach(function (c, i) {
        if (i) used.appendChild(document.createTextNode(", "));
        used.appendChild(link(c));
      });
      field(dl, "used by", used);
    }
    panel.appendChild(dl);
    if (k.error) {
      panel.appendChild(el("h4", "Error"));
      panel.appendChild(el("p", k.error.type + ": " + k.error.message, "error-message"));
      panel.appendChild(el("pre", k.error.traceback, "traceback"));
    }
  }
  document.querySelectorAll("[data-knot]").forEach(function (node) {
    var index = Number(node.getAttribute("data-knot"));
    node.addEventListener("click", function () { select(index); });
    node.addEventListener("keydown", function (e) { if (e.key === "Enter") select(index); });
  });
  document.querySelectorAll("button[data-filter]").forEach(function (button) {
    button.addEventListener("click", function () {
      var on = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", on ? "true" : "false");
      var outcome = button.getAttribute("data-filter");
      document.querySelectorAll('[data-outcome="' + outcome + '"]').forEach(function (n) {
        n.classList.toggle("hidden", !on);
      });
      document.querySelectorAll(".edge").forEach(function (edge) {
        var a = document.querySelector('.knot[data-knot="' + edge.getAttribute("data-from") + '"]');
        var b = document.querySelector('.knot[data-knot="' + edge.getAttribute("data-to") + '"]');
        edge.classList.toggle("hidden", a.classList.contains("hidden") ||
          b.classList.contains("hidden"));
      });
    });
  });
})();
"""
