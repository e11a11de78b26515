// The attention explorer's page script: draws the head view and the model view from the JSON in #attention-data
// (its layout is described in lib/explorer/page.py). Plain JavaScript, no libraries, nothing fetched.
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("attention-data").textContent);
  const HEAD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f"];
  // viridis, sampled at 0, 1/8, ..., 1
  const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129],
    [92, 200, 99], [170, 220, 50], [253, 231, 37]];
  const ROW = 24;            // pixels per token row (the CSS --row)
  const LINE_WIDTH = 300;    // pixels between the two token columns
  const SMALLEST_LINE = 1e-3; // weights below this get no line (invisible anyway)
  const WORD_START = "\u2581";

  const state = {
    view: defaultView(), // index into DATA.views: the kind of attention in the head view
    entry: null,         // index into its entries: the layer (or sequence) shown
    heads: null,         // Set of the shown heads
    merge: false,
    focus: null,         // {side: "query" | "key", index}
    pinned: false,
    zoom: null           // {view, entry, head} while the large map is open
  };
  state.entry = DATA.views[state.view].first_shown;
  state.heads = new Set(range(headCount(currentEntry())));

  // ---- helpers ----------------------------------------------------------------------------------------------

  function defaultView() {
    const cross = DATA.views.findIndex(function (view) { return view.id === "cross"; });
    return cross >= 0 ? cross : 0;
  }
  function range(count) { return Array.from({length: count}, function (_, i) { return i; }); }
  function headCount(entry) { return entry.weights.length; }
  function currentView() { return DATA.views[state.view]; }
  function currentEntry() { return currentView().entries[state.entry]; }
  function headColour(head) {
    return head < HEAD_COLOURS.length ? HEAD_COLOURS[head] : "hsl(" + ((head * 47) % 360) + ", 65%, 45%)";
  }
  function viridis(weight) {
    const t = Math.min(1, Math.max(0, weight)) * (VIRIDIS.length - 1);
    const low = Math.floor(t), high = Math.min(VIRIDIS.length - 1, low + 1), part = t - low;
    return VIRIDIS[low].map(function (value, i) { return Math.round(value + (VIRIDIS[high][i] - value) * part); });
  }
  function css(rgb) { return "rgb(" + rgb.join(",") + ")"; }
  function format(weight) { return weight.toFixed(4); }
  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svgElement(tag, attributes) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attributes).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    return node;
  }
  function mergeable(entry) { return entry.query_words !== null && entry.key_words !== null; }

  // ---- the weights shown: pieces, or words (merged) -------------------------------------------------------------

  // Groups of token positions: one per token, or one per word when merging.
  function groups(tokens, words, notes, merge) {
    if (!merge || words === null) {
      return tokens.map(function (token, i) { return {label: token, note: notes ? notes[i] : "", members: [i]}; });
    }
    const result = [];
    words.forEach(function (word, i) {
      if (!result[word]) result[word] = {label: "", note: "", members: []};
      result[word].members.push(i);
      result[word].label += tokens[i];
    });
    result.forEach(function (group) {
      const special = /^<.*>$/.test(group.label);
      group.label = special ? group.label : group.label.split(WORD_START).join("");
    });
    return result;
  }

  // Weights of an entry as floats, [head][query][key]; merged into words: summed over the key pieces of a word
  // and averaged over its query pieces, so that each row still sums to what the pieces' rows sum to.
  function matrices(entry, merge) {
    const useWords = merge && mergeable(entry);
    const queries = groups(entry.queries, entry.query_words, entry.query_notes, useWords);
    const keys = groups(entry.keys, entry.key_words, entry.key_notes, useWords);
    const heads = entry.weights.map(function (rows) {
      return queries.map(function (query) {
        return keys.map(function (key) {
          let total = 0;
          query.members.forEach(function (i) {
            key.members.forEach(function (j) { total += rows[i][j]; });
          });
          return total / DATA.scale / query.members.length;
        });
      });
    });
    return {queries: queries, keys: keys, heads: heads};
  }

  // ---- facts --------------------------------------------------------------------------------------------------

  function renderFacts() {
    const list = document.getElementById("facts");
    DATA.facts.forEach(function (fact) {
      list.appendChild(element("dt", {}, fact[0]));
      list.appendChild(element("dd", /^(Sentence|Translation)$/.test(fact[0]) ? {"class": "sentence"} : {},
        fact[1]));
    });
    document.getElementById("merge-label").hidden = !DATA.views.some(function (view) {
      return view.entries.some(mergeable);
    });
  }

  // ---- head view ----------------------------------------------------------------------------------------------

  function choiceButton(label, pressed, onClick, attributes) {
    const button = element("button", Object.assign({type: "button", "aria-pressed": String(pressed)}, attributes),
      label);
    button.addEventListener("click", onClick);
    return button;
  }

  function renderControls() {
    const kinds = document.getElementById("kind-choice");
    kinds.replaceChildren();
    DATA.views.forEach(function (view, index) {
      kinds.appendChild(choiceButton(view.name, index === state.view, function () {
        state.view = index;
        state.entry = Math.min(state.entry, currentView().entries.length - 1);
        state.heads = new Set(range(headCount(currentEntry())));
        clearFocus();
        renderHeadView();
      }, {"data-view": view.id}));
    });
    document.getElementById("entry-legend").textContent = currentView().entry_label;
    const entries = document.getElementById("entry-choice");
    entries.replaceChildren();
    currentView().entries.forEach(function (entry, index) {
      entries.appendChild(choiceButton(entry.label, index === state.entry, function () {
        state.entry = index;
        renderHeadView();
      }, {"data-entry": String(index), "aria-label": currentView().entry_label + " " + entry.label}));
    });
    const heads = document.getElementById("head-choice");
    heads.replaceChildren();
    range(headCount(currentEntry())).forEach(function (head) {
      const button = choiceButton("", state.heads.has(head), function () {
        if (state.heads.has(head)) state.heads.delete(head); else state.heads.add(head);
        renderHeadView();
      }, {"class": "head", "data-head": String(head), "style": "--colour:" + headColour(head)});
      button.appendChild(element("span", {"class": "swatch", "aria-hidden": "true"}));
      button.appendChild(document.createTextNode(headCount(currentEntry()) > 1 ? "head " + (head + 1) : "weights"));
      button.addEventListener("dblclick", function () {
        state.heads = new Set([head]);
        renderHeadView();
      });
      heads.appendChild(button);
    });
  }

  function clearFocus() {
    state.focus = null;
    state.pinned = false;
  }

  // The weights between the focused token and each token of the other column: [head][other token].
  function focusWeights(shown) {
    const focus = state.focus;
    return shown.heads.map(function (rows) {
      return focus.side === "query" ? rows[focus.index] : rows.map(function (row) { return row[focus.index]; });
    });
  }

  function tokenList(listId, tokens, side) {
    const list = document.getElementById(listId);
    list.replaceChildren();
    tokens.forEach(function (token, index) {
      const button = element("button", {type: "button", "class": "token", "data-side": side,
        "data-index": String(index)});
      const parts = [element("span", {"class": "label"}, token.label), element("span", {"class": "bars",
        "aria-hidden": "true"})];
      if (token.note) parts.push(element("span", {"class": "note"}, token.note));
      button.append.apply(button, side === "query" ? parts.reverse() : parts);
      button.addEventListener("mouseenter", function () { if (!state.pinned) setFocus(side, index, false); });
      button.addEventListener("focus", function () { if (!state.pinned) setFocus(side, index, false); });
      button.addEventListener("mouseleave", function () { if (!state.pinned) setFocus(null); });
      button.addEventListener("click", function () {
        const focused = state.focus && state.focus.side === side && state.focus.index === index;
        if (state.pinned && focused) setFocus(null); else setFocus(side, index, true);
      });
      list.appendChild(element("li")).appendChild(button);
    });
  }

  // Marks the focused token, dims its neighbours, and gives each token of the other column its weight bars.
  function renderTokenFocus(shown) {
    const focus = state.focus;
    const weights = focus ? focusWeights(shown) : null;
    document.querySelectorAll("#head-canvas .token").forEach(function (button) {
      const side = button.getAttribute("data-side"), index = Number(button.getAttribute("data-index"));
      const isFocus = Boolean(focus && focus.side === side && focus.index === index);
      button.classList.toggle("focused", isFocus);
      button.classList.toggle("pinned", isFocus && state.pinned);
      button.classList.toggle("dim", Boolean(focus && focus.side === side && !isFocus));
      const bars = button.querySelector(".bars");
      bars.replaceChildren();
      if (focus && focus.side !== side) {
        state.heads.forEach(function (head) {
          bars.appendChild(element("span", {style: "width:" + Math.round(weights[head][index] * 48) +
            "px;background:" + headColour(head)}));
        });
        if (state.heads.size === 1) {  // one head: its weight in figures too
          bars.appendChild(element("span", {"class": "value"}, weights[state.heads.values().next().value][index]
            .toFixed(2)));
        }
      }
    });
  }

  function setFocus(side, index, pinned) {
    if (side === null) {
      clearFocus();
    } else {
      state.focus = {side: side, index: index};
      state.pinned = Boolean(pinned);
    }
    renderFocus();
  }

  // What depends on the focused token: lines, bars, the details table and the tooltip.
  function renderFocus() {
    const shown = matrices(currentEntry(), state.merge);
    renderTokenFocus(shown);
    renderLines(shown);
    renderDetails(shown);
    if (state.focus) {
      showTooltip(document.querySelector('#head-canvas .token[data-side="' + state.focus.side +
        '"][data-index="' + state.focus.index + '"]'), shown);
    } else {
      hideTooltip();
    }
  }

  function renderLines(shown) {
    const svg = document.getElementById("lines");
    svg.replaceChildren();
    const rows = Math.max(shown.queries.length, shown.keys.length);
    svg.setAttribute("width", LINE_WIDTH);
    svg.setAttribute("height", rows * ROW);
    const focus = state.focus;
    state.heads.forEach(function (head) {
      const colour = headColour(head);
      shown.heads[head].forEach(function (row, query) {
        if (focus && focus.side === "query" && focus.index !== query) return;
        row.forEach(function (weight, key) {
          if (focus && focus.side === "key" && focus.index !== key) return;
          if (weight < SMALLEST_LINE) return;
          svg.appendChild(svgElement("line", {
            x1: 4, y1: query * ROW + ROW / 2, x2: LINE_WIDTH - 4, y2: key * ROW + ROW / 2, stroke: colour,
            "stroke-width": focus ? 3 : 2, "stroke-opacity": weight.toFixed(4), "stroke-linecap": "round",
            "data-head": head, "data-query": query, "data-key": key, "data-weight": weight.toFixed(6)
          }));
        });
      });
    });
  }

  function renderDetails(shown) {
    const details = document.getElementById("details");
    details.replaceChildren();
    const view = currentView();
    if (!state.focus) {
      details.appendChild(element("p", {}, "Point at a token to list its weights here."));
      return;
    }
    const focus = state.focus;
    const own = focus.side === "query" ? shown.queries[focus.index] : shown.keys[focus.index];
    const others = focus.side === "query" ? shown.keys : shown.queries;
    const heads = Array.from(state.heads).sort(function (a, b) { return a - b; });
    const what = focus.side === "query" ? "\u201c" + own.label + "\u201d attends to each token on the right" :
      "How much each token on the left attends to \u201c" + own.label + "\u201d";
    details.appendChild(element("p", {}, what + " (" + currentEntry().caption + "):"));
    if (!heads.length) {
      details.appendChild(element("p", {}, "No head is shown: switch one on above."));
      return;
    }
    const weights = focusWeights(shown);
    const table = element("table", {id: "details-table"});
    const header = element("tr");
    header.appendChild(element("th", {scope: "col"}, focus.side === "query" ? view.key_side : view.query_side));
    heads.forEach(function (head) {
      header.appendChild(element("th", {scope: "col", style: "color:" + headColour(head)},
        headCount(currentEntry()) > 1 ? "head " + (head + 1) : "weight"));
    });
    table.appendChild(element("thead")).appendChild(header);
    const body = element("tbody");
    others.forEach(function (other, index) {
      const row = element("tr");
      row.appendChild(element("th", {scope: "row"}, other.label + (other.note ? " (" + other.note + ")" : "")));
      heads.forEach(function (head) {
        const weight = weights[head][index];
        row.appendChild(element("td", {"class": "weight", "data-head": String(head), "data-other": String(index),
          "data-weight": weight.toFixed(6)}, format(weight)));
      });
      body.appendChild(row);
    });
    table.appendChild(body);
    details.appendChild(table);
  }

  function renderHeadView() {
    const view = currentView();
    const entry = currentEntry();
    const shown = matrices(entry, state.merge);
    if (state.focus && state.focus.index >= (state.focus.side === "query" ? shown.queries : shown.keys).length) {
      clearFocus();
    }
    renderControls();
    document.getElementById("about").textContent = view.about +
      (view.normalised ? " Each row of weights sums to 1 (softmax)." : " The weights are sigmoids: each is in [0, 1] " +
      "on its own, and a row need not sum to 1.");
    document.getElementById("caption").textContent = entry.caption;
    document.getElementById("query-side").textContent = view.query_side;
    document.getElementById("key-side").textContent = view.key_side;
    tokenList("query-column", shown.queries, "query");
    tokenList("key-column", shown.keys, "key");
    renderFocus();
  }

  // ---- tooltip ------------------------------------------------------------------------------------------------

  function hideTooltip() { document.getElementById("tooltip").hidden = true; }

  function showTooltip(anchor, shown) {
    const tooltip = document.getElementById("tooltip");
    const focus = state.focus;
    const own = focus.side === "query" ? shown.queries[focus.index] : shown.keys[focus.index];
    const others = focus.side === "query" ? shown.keys : shown.queries;
    const weights = focusWeights(shown);
    tooltip.replaceChildren();
    const title = element("div");
    title.append(focus.side === "query" ? "From " : "To ", element("b", {}, own.label),
      " (" + currentEntry().caption.toLowerCase() + ")");
    tooltip.appendChild(title);
    Array.from(state.heads).sort(function (a, b) { return a - b; }).forEach(function (head) {
      const best = range(others.length).sort(function (a, b) { return weights[head][b] - weights[head][a]; })
        .slice(0, 3);
      const row = element("div", {"class": "row"});
      row.appendChild(element("span", {"class": "swatch", style: "background:" + headColour(head)}));
      const text = best.map(function (index) {
        return others[index].label + (others[index].note ? " " + others[index].note : "") + ": " +
          format(weights[head][index]);
      }).join(", ");
      row.appendChild(element("span", {}, (headCount(currentEntry()) > 1 ? "head " + (head + 1) + ": " : "") + text));
      tooltip.appendChild(row);
    });
    tooltip.hidden = false;
    placeTooltip(tooltip, anchor);
  }

  // Beside the key column when there is room (so no token is hidden), else below the token.
  function placeTooltip(tooltip, anchor) {
    const box = anchor.getBoundingClientRect();
    const keys = document.getElementById("key-column").getBoundingClientRect();
    let left = keys.right + 16, top = box.top - 8;
    if (left + tooltip.offsetWidth > window.innerWidth - 8) {
      left = Math.min(window.innerWidth - tooltip.offsetWidth - 8, Math.max(8, box.left));
      top = box.bottom + 6 + tooltip.offsetHeight > window.innerHeight ? box.top - tooltip.offsetHeight - 6 :
        box.bottom + 6;
    }
    tooltip.style.left = left + "px";
    tooltip.style.top = Math.max(8, Math.min(window.innerHeight - tooltip.offsetHeight - 8, top)) + "px";
  }

  // ---- model view ---------------------------------------------------------------------------------------------

  function drawHeatmap(canvas, matrix) {
    const rows = matrix.length, columns = rows ? matrix[0].length : 0;
    canvas.width = Math.max(1, columns);
    canvas.height = Math.max(1, rows);
    const context = canvas.getContext("2d");
    const image = context.createImageData(canvas.width, canvas.height);
    matrix.forEach(function (row, y) {
      row.forEach(function (weight, x) {
        const rgb = viridis(weight), at = 4 * (y * canvas.width + x);
        image.data[at] = rgb[0];
        image.data[at + 1] = rgb[1];
        image.data[at + 2] = rgb[2];
        image.data[at + 3] = 255;
      });
    });
    context.putImageData(image, 0, 0);
  }

  function renderScale() {
    const scale = document.getElementById("scale");
    const stops = range(11).map(function (i) { return css(viridis(i / 10)) + " " + (i * 10) + "%"; });
    scale.replaceChildren(element("span", {}, "0"), element("span", {"class": "bar",
      style: "background:linear-gradient(to right," + stops.join(",") + ")"}), element("span", {}, "1"));
  }

  function renderModelView() {
    const grids = document.getElementById("grids");
    grids.replaceChildren();
    DATA.views.forEach(function (view, viewIndex) {
      const card = element("section", {"class": "grid-card", "aria-label": view.name});
      card.appendChild(element("h2", {}, view.name));
      card.appendChild(element("p", {}, view.about));
      const table = element("table", {"class": "grid"});
      const heads = headCount(view.entries[0]);
      const header = element("tr");
      header.appendChild(element("th", {scope: "col"}, view.entry_label));
      range(heads).forEach(function (head) {
        header.appendChild(element("th", {scope: "col", style: "color:" + headColour(head)},
          heads > 1 ? "head " + (head + 1) : ""));
      });
      table.appendChild(element("thead")).appendChild(header);
      const body = element("tbody");
      view.entries.forEach(function (entry, entryIndex) {
        const shown = matrices(entry, state.merge);
        const row = element("tr");
        row.appendChild(element("th", {scope: "row"}, entry.label));
        range(heads).forEach(function (head) {
          const name = view.name + ", " + view.entry_label.toLowerCase() + " " + entry.label +
            (heads > 1 ? ", head " + (head + 1) : "");
          const button = element("button", {type: "button", "class": "thumb", "aria-label": name + ": open large",
            title: name, "data-view": view.id, "data-entry": String(entryIndex), "data-head": String(head)});
          const canvas = element("canvas", {role: "img", "aria-label": name});
          drawHeatmap(canvas, shown.heads[head]);
          button.appendChild(canvas);
          button.addEventListener("click", function () { openZoom(viewIndex, entryIndex, head); });
          row.appendChild(element("td")).appendChild(button);
        });
        body.appendChild(row);
      });
      table.appendChild(body);
      card.appendChild(table);
      grids.appendChild(card);
    });
  }

  function openZoom(viewIndex, entryIndex, head) {
    state.zoom = {view: viewIndex, entry: entryIndex, head: head};
    renderZoom();
    const dialog = document.getElementById("zoom");
    if (!dialog.open) dialog.showModal();
  }

  function renderZoom() {
    const view = DATA.views[state.zoom.view], entry = view.entries[state.zoom.entry], head = state.zoom.head;
    const heads = headCount(entry);
    const shown = matrices(entry, state.merge);
    document.getElementById("zoom-title").textContent = entry.caption + (heads > 1 ? ", head " + (head + 1) : "");
    document.getElementById("zoom-previous").disabled = head === 0;
    document.getElementById("zoom-next").disabled = head === heads - 1;
    const table = element("table", {"class": "heatmap", id: "zoom-table"});
    table.appendChild(element("caption", {"class": "sr-only"}, entry.caption + ": rows " + view.query_side +
      ", columns " + view.key_side));
    const header = element("tr");
    const corner = element("th", {"class": "axis", scope: "col"});
    corner.append(element("span", {}, "rows: " + view.query_side), element("br"),
      element("span", {}, "columns: " + view.key_side));
    header.appendChild(corner);
    shown.keys.forEach(function (key) {
      header.appendChild(element("th", {scope: "col"}, key.label + (key.note ? " " + key.note : "")));
    });
    table.appendChild(element("thead")).appendChild(header);
    const body = element("tbody");
    shown.queries.forEach(function (query, queryIndex) {
      const row = element("tr");
      row.appendChild(element("th", {scope: "row"}, query.label + (query.note ? " (" + query.note + ")" : "")));
      shown.keys.forEach(function (key, keyIndex) {
        const weight = shown.heads[head][queryIndex][keyIndex];
        const cell = element("td", {style: "background:" + css(viridis(weight)), "data-weight": weight.toFixed(6),
          "data-query": String(queryIndex), "data-key": String(keyIndex),
          title: query.label + " \u2192 " + key.label + ": " + format(weight)});
        cell.appendChild(element("span", {"class": "sr-only"}, format(weight)));
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    table.appendChild(body);
    document.getElementById("zoom-body").replaceChildren(table);
  }

  function moveZoom(step) {
    const entry = DATA.views[state.zoom.view].entries[state.zoom.entry];
    state.zoom.head = Math.min(headCount(entry) - 1, Math.max(0, state.zoom.head + step));
    renderZoom();
  }

  // ---- tabs and global controls -------------------------------------------------------------------------------

  function showTab(name) {
    ["head", "model"].forEach(function (tab) {
      document.getElementById("tab-" + tab).setAttribute("aria-selected", String(tab === name));
      document.getElementById(tab + "-view").hidden = tab !== name;
    });
    hideTooltip();
    if (name === "model") renderModelView();
  }

  function start() {
    renderFacts();
    renderScale();
    document.getElementById("tab-head").addEventListener("click", function () { showTab("head"); });
    document.getElementById("tab-model").addEventListener("click", function () { showTab("model"); });
    document.getElementById("merge").addEventListener("change", function (event) {
      state.merge = event.target.checked;
      clearFocus();
      renderHeadView();
      if (!document.getElementById("model-view").hidden) renderModelView();
    });
    document.getElementById("zoom-close").addEventListener("click", function () {
      document.getElementById("zoom").close();
    });
    document.getElementById("zoom-previous").addEventListener("click", function () { moveZoom(-1); });
    document.getElementById("zoom-next").addEventListener("click", function () { moveZoom(1); });
    document.getElementById("zoom").addEventListener("close", function () { state.zoom = null; });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && state.focus) setFocus(null);
    });
    window.addEventListener("scroll", hideTooltip, {passive: true});
    renderHeadView();
    document.body.setAttribute("data-ready", "true");
  }

  start();
}());
