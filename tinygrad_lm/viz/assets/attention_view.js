(function () {
  "use strict";
  var root = document.getElementById("__ROOT_ID__");
  var SVG = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"];
  var ROW = 20, THUMB = 60;
  var data, state, ui = {}, built = {};

  function headColor(h) { return h < PALETTE.length ? PALETTE[h] : "hsl(" + (h * 47 % 360) + ",65%,42%)"; }
  function label(t) {       // what a token looks like: newline, tab, a token of spaces and the empty one drawn
    t = t.replace(/\n/g, "\u23ce").replace(/\t/g, "\u21e5").replace(/\r/g, "\u240d");
    return t === "" ? "\u2205" : t.trim() === "" ? t.replace(/ /g, "\u2423") : t;
  }
  function el(tag, attrs, parent, text) {
    var e = tag.indexOf("svg:") === 0 ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function section() { return data.sections[state.section]; }
  function clamp(x, lo, hi) { x = parseInt(x, 10); return isNaN(x) ? lo : Math.max(lo, Math.min(hi, x)); }
  function weightsOf(layer, head) { return section().weights[layer][head]; }
  function tokenName(tok) {
    var s = section(), list = tok.side === "q" ? s.query_tokens : s.key_tokens;
    return (tok.side === "q" ? "query " : "key ") + tok.index + " \u201c" + label(list[tok.index]) + "\u201d";
  }

  // ------------------------------------------------------------------ state: every change goes here
  function setState(patch) {
    if (patch.section !== undefined && patch.section !== state.section) {   // a new section starts afresh
      state.layer = 0; state.heads = null; state.token = null; state.pinned = false;
    }
    for (var k in patch) state[k] = patch[k];
    state.section = clamp(state.section, 0, data.sections.length - 1);
    var s = section();
    state.view = state.view === "model" ? "model" : "head";
    state.layer = clamp(state.layer, 0, s.heads.length - 1);
    var H = s.heads[state.layer], seen = {};
    if (state.heads === null) { state.heads = []; for (var h = 0; h < H; h++) state.heads.push(h); }
    state.heads = state.heads.map(Number).filter(function (h) {
      var ok = h >= 0 && h < H && h === Math.floor(h) && !seen[h]; seen[h] = true; return ok;
    }).sort(function (a, b) { return a - b; });
    if (state.token) {
      var n = state.token.side === "q" ? s.query_tokens.length : s.key_tokens.length;
      if ((state.token.side !== "q" && state.token.side !== "k") || !(state.token.index >= 0 && state.token.index < n))
        state.token = null;
    }
    if (!state.token) state.pinned = false;
    render();
  }

  function fromFragment(hash) {   // #view=head&section=0&layer=3&heads=0,5&token=q4 (a pinned token)
    var patch = {};
    hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("="), key = decodeURIComponent(kv[0]), value = decodeURIComponent(kv[1] || "");
      if (key === "view") patch.view = value;
      else if (key === "section") patch.section = parseInt(value, 10) || 0;
      else if (key === "layer") patch.layer = parseInt(value, 10) || 0;
      else if (key === "heads") patch.heads = value === "all" ? null : value === "" ? [] : value.split(",").map(Number);
      else if (key === "token") {
        var m = /^([qk])(\d+)$/.exec(value);
        patch.token = m ? {side: m[1], index: parseInt(m[2], 10)} : null;
        patch.pinned = !!m;
      }
    });
    return patch;
  }

  // ------------------------------------------------------------------ controls
  function buildBar() {
    var bar = el("div", {"class": "tlv-bar", role: "toolbar", "aria-label": "attention view controls"}, root);
    if (data.sections.length > 1) {
      var lab = el("label", {}, bar, "Attention ");
      ui.section = el("select", {"class": "tlv-section"}, lab);
      data.sections.forEach(function (s, i) { el("option", {value: i}, ui.section, s.name); });
      ui.section.addEventListener("change", function () { setState({section: parseInt(ui.section.value, 10)}); });
    }
    ui.viewButtons = ["head", "model"].map(function (v) {
      var b = el("button", {type: "button", "class": "tlv-viewbtn", "data-view": v}, bar,
                 v === "head" ? "Head view" : "Model view");
      b.addEventListener("click", function () { setState({view: v}); });
      return b;
    });
    var layerLabel = el("label", {}, bar, "Layer ");
    ui.layer = el("select", {"class": "tlv-layer"}, layerLabel);
    ui.layer.addEventListener("change", function () {
      var H = section().heads[parseInt(ui.layer.value, 10)];
      // the same heads stay selected on another layer when it has them
      setState({layer: parseInt(ui.layer.value, 10), heads: state.heads.filter(function (h) { return h < H; })});
    });
    ui.heads = el("span", {"class": "tlv-heads", role: "group", "aria-label": "heads"}, bar);
    var all = el("button", {type: "button", "class": "tlv-all"}, bar, "all heads");
    all.addEventListener("click", function () { setState({heads: null}); });
    var none = el("button", {type: "button", "class": "tlv-none"}, bar, "no heads");
    none.addEventListener("click", function () { setState({heads: []}); });
    ui.info = el("p", {"class": "tlv-info"}, root);
    el("p", {"class": "tlv-help"}, root,
       "Hover or focus a token (Tab, then \u2191 \u2193 \u2190 \u2192) to keep only " +
       "its lines; click or Enter pins it, Esc clears. In the model view, click or press Enter on a head to open it.");
    ui.status = el("p", {"class": "tlv-status", role: "status", "aria-live": "polite"}, root);
    ui.headPane = el("div", {"class": "tlv-headview"}, root);
    ui.modelPane = el("div", {"class": "tlv-modelview"}, root);
  }

  function syncBar() {
    var s = section();
    if (ui.section) ui.section.value = String(state.section);
    ui.viewButtons.forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-view") === state.view));
    });
    if (built.layers !== state.section) {        // a section of its own layer count
      ui.layer.textContent = "";
      s.heads.forEach(function (_, l) { el("option", {value: l}, ui.layer, String(l)); });
      built.layers = state.section;
    }
    ui.layer.value = String(state.layer);
    var H = s.heads[state.layer];
    if (ui.heads.childNodes.length !== H) {
      ui.heads.textContent = "";
      for (var h = 0; h < H; h++) (function (h) {
        var b = el("button", {type: "button", "class": "tlv-headbtn", "data-head": h, title: "head " + h,
                              style: "border-color:" + headColor(h) + ";background:" + headColor(h)},
                   ui.heads, String(h));
        b.addEventListener("click", function () {
          var i = state.heads.indexOf(h);
          setState({heads: i < 0 ? state.heads.concat([h]) : state.heads.filter(function (x) { return x !== h; })});
        });
      })(h);
    }
    Array.prototype.forEach.call(ui.heads.childNodes, function (b) {
      var on = state.heads.indexOf(parseInt(b.getAttribute("data-head"), 10)) >= 0;
      b.setAttribute("aria-pressed", String(on));
      b.setAttribute("aria-label", "head " + b.getAttribute("data-head") + (on ? ", shown" : ", hidden"));
    });
    ui.info.textContent = s.kind + " \u00b7 " + s.heads.length + " layers \u00d7 " + s.heads[state.layer] +
      " heads \u00b7 " + s.query_tokens.length + " query and " + s.key_tokens.length + " key tokens";
  }

  // ------------------------------------------------------------------ head view: two columns of tokens, lines between
  function buildHeadView() {
    var s = section(), pane = ui.headPane;
    pane.textContent = "";
    var longest = 1;
    s.query_tokens.concat(s.key_tokens).forEach(function (t) { longest = Math.max(longest, label(t).length); });
    var cross = s.kind === "cross-attention";
    var colW = Math.max(cross ? 165 : 100, Math.min(320, 16 + 8 * longest)), gap = 150, top = 28;
    var rows = Math.max(s.query_tokens.length, s.key_tokens.length);
    var width = colW * 2 + gap + 8, height = top + rows * ROW + 6;
    var svg = ui.svg = el("svg:svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height,
                                      role: "group", tabindex: -1, "aria-label": s.kind + ", head view"}, pane);
    el("svg:text", {x: colW, y: 16, "text-anchor": "end", "class": "tlv-caption"}, svg,
       cross ? "output tokens (queries)" : "query tokens");
    el("svg:text", {x: colW + gap, y: 16, "class": "tlv-caption"}, svg, cross ? "source tokens (keys)" : "key tokens");
    ui.lines = el("svg:g", {"class": "tlv-lines", "stroke-width": 2, fill: "none"}, svg);
    ui.geometry = {x1: colW + 4, x2: colW + gap - 4, y: function (i) { return top + i * ROW + ROW / 2; }};
    ui.tokens = {q: [], k: []};
    var columns = [["q", s.query_tokens, 4, colW, "end"], ["k", s.key_tokens, colW + gap - 4, colW + gap, "start"]];
    columns.forEach(function (c) {         // side, tokens, box x, text x, text anchor
      var side = c[0];
      c[1].forEach(function (t, i) {
        var g = el("svg:g", {"class": "tlv-tok", tabindex: 0, role: "button", "data-side": side, "data-index": i,
                             "aria-pressed": "false",
                             "aria-label": (side === "q" ? "query " : "key ") + i + ": " + label(t)}, svg);
        el("svg:rect", {"class": "tlv-box", x: c[2], y: top + i * ROW + 1, width: colW - 4, height: ROW - 2, rx: 3}, g);
        el("svg:text", {x: c[3] + (side === "q" ? -4 : 4), y: top + i * ROW + ROW / 2 + 4, "text-anchor": c[4]},
           g, label(t));
        ui.tokens[side].push(g);
        wireToken(g, side, i);
      });
    });
    built.head = state.section;
  }

  function wireToken(g, side, i) {
    function show() { if (!state.pinned) setState({token: {side: side, index: i}}); }
    function hide() { if (!state.pinned) setState({token: null}); }
    function pin() {
      var same = state.pinned && state.token && state.token.side === side && state.token.index === i;
      setState(same ? {token: null, pinned: false} : {token: {side: side, index: i}, pinned: true});
    }
    g.addEventListener("mouseenter", show);
    g.addEventListener("focus", show);
    g.addEventListener("mouseleave", hide);
    g.addEventListener("blur", hide);
    g.addEventListener("click", pin);
    g.addEventListener("keydown", function (e) {
      var list = ui.tokens[side], other = ui.tokens[side === "q" ? "k" : "q"], next = null;
      if (e.key === "Enter" || e.key === " ") pin();
      else if (e.key === "Escape") setState({token: null, pinned: false});
      else if (e.key === "ArrowDown") next = list[Math.min(i + 1, list.length - 1)];
      else if (e.key === "ArrowUp") next = list[Math.max(i - 1, 0)];
      else if (e.key === "ArrowRight" || e.key === "ArrowLeft") next = other[Math.min(i, other.length - 1)];
      else return;
      e.preventDefault();
      if (next) next.focus();
    });
  }

  function drawLines() {
    var s = section(), Tk = s.key_tokens.length, Tq = s.query_tokens.length, g = ui.geometry, parts = [];
    var tok = state.token;
    state.heads.forEach(function (h) {
      var w = weightsOf(state.layer, h);
      parts.push('<g class="tlv-head" data-head="' + h + '" stroke="' + headColor(h) + '">');
      for (var q = 0; q < Tq; q++) {
        if (tok && tok.side === "q" && tok.index !== q) continue;
        for (var k = 0; k < Tk; k++) {
          if (tok && tok.side === "k" && tok.index !== k) continue;
          var v = w[q * Tk + k];
          if (v > 0) parts.push('<line data-q="' + q + '" data-k="' + k + '" x1="' + g.x1 + '" y1="' + g.y(q) +
                                '" x2="' + g.x2 + '" y2="' + g.y(k) + '" stroke-opacity="' + v / data.scale + '"/>');
        }
      }
      parts.push("</g>");
    });
    ui.lines.innerHTML = parts.join("");     // one parse instead of thousands of DOM calls
  }

  function markTokens() {
    var s = section(), Tk = s.key_tokens.length, tok = state.token;
    ["q", "k"].forEach(function (side) {
      ui.tokens[side].forEach(function (g, i) {
        var active = !!tok && tok.side === side && tok.index === i, box = g.firstChild, best = 0, color = "#fff";
        g.setAttribute("class", active ? "tlv-tok tlv-active" : "tlv-tok");
        g.setAttribute("aria-pressed", String(active && state.pinned));
        if (tok && tok.side !== side) {    // the other column: shaded by the strongest weight among the heads shown
          state.heads.forEach(function (h) {
            var v = weightsOf(state.layer, h)[side === "k" ? tok.index * Tk + i : i * Tk + tok.index];
            if (v > best) { best = v; color = headColor(h); }
          });
        }
        box.style.fill = color;
        box.style.fillOpacity = String(best / data.scale * 0.6);
      });
    });
  }

  // ------------------------------------------------------------------ model view: layers x heads, small pictures
  function buildModelView() {
    var s = section(), pane = ui.modelPane, Tq = s.query_tokens.length, Tk = s.key_tokens.length;
    var maxH = Math.max.apply(null, s.heads);
    var scale = THUMB / Math.max(Tq, Tk);
    var w = Math.max(8, Math.round(Tk * scale)), hgt = Math.max(8, Math.round(Tq * scale));
    pane.textContent = "";
    var grid = el("div", {"class": "tlv-grid", role: "grid", "aria-label": s.kind + ", model view",
                          style: "grid-template-columns:auto repeat(" + maxH + "," + (w + 8) + "px)"}, pane);
    el("span", {"class": "tlv-lab"}, grid, "layer \\ head");
    for (var h = 0; h < maxH; h++) el("span", {"class": "tlv-lab"}, grid, String(h));
    ui.thumbs = [];
    s.heads.forEach(function (H, l) {
      el("span", {"class": "tlv-lab"}, grid, String(l));
      for (var h = 0; h < maxH; h++) {
        if (h >= H) { el("span", {}, grid); continue; }
        var b = el("button", {type: "button", "class": "tlv-thumb", "data-layer": l, "data-head": h,
                              "aria-label": "layer " + l + ", head " + h + ": open in the head view"}, grid);
        var c = el("canvas", {width: Tk, height: Tq, style: "width:" + w + "px;height:" + hgt + "px"}, b);
        paint(c, weightsOf(l, h));
        wireThumb(b, l, h);
        ui.thumbs.push(b);
      }
    });
    built.model = state.section;
  }

  function paint(canvas, w) {        // white (0) to dark blue (1), one pixel per (query, key)
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height), px = img.data;
    for (var i = 0; i < w.length; i++) {
      var v = w[i] / data.scale;
      px[4 * i] = 255 - 247 * v; px[4 * i + 1] = 255 - 207 * v; px[4 * i + 2] = 255 - 148 * v; px[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function wireThumb(b, l, h) {
    b.addEventListener("click", function () {
      setState({view: "head", layer: l, heads: [h], token: null, pinned: false});
      ui.svg.focus();            // keyboard users continue in the head view (Tab reaches its tokens)
    });
    b.addEventListener("keydown", function (e) {
      var step = {ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0]}[e.key];
      if (!step) return;
      e.preventDefault();
      var next = root.querySelector('.tlv-thumb[data-layer="' + (l + step[0]) + '"][data-head="' +
                                    (h + step[1]) + '"]');
      if (next) next.focus();
    });
  }

  // ------------------------------------------------------------------ render: the state drawn
  function render() {
    syncBar();
    ui.headPane.hidden = state.view !== "head";
    ui.modelPane.hidden = state.view !== "model";
    if (state.view === "head") {
      if (built.head !== state.section) buildHeadView();
      drawLines();
      markTokens();
    } else {
      if (built.model !== state.section) buildModelView();
      ui.thumbs.forEach(function (b) {
        var on = parseInt(b.getAttribute("data-layer"), 10) === state.layer &&
                 state.heads.indexOf(parseInt(b.getAttribute("data-head"), 10)) >= 0;
        b.setAttribute("class", on ? "tlv-thumb tlv-current" : "tlv-thumb");
      });
    }
    var tok = state.token;
    root.setAttribute("data-view", state.view);
    root.setAttribute("data-layer", state.layer);
    root.setAttribute("data-heads", state.heads.join(","));
    root.setAttribute("data-token", tok ? tok.side + tok.index : "");
    var text = "Layer " + state.layer + ", " + (state.heads.length ? "heads " + state.heads.join(", ") : "no heads");
    if (tok && state.view === "head") {
      text += " \u00b7 " + tokenName(tok) + (state.pinned ? " (pinned)" : "");
      if (state.heads.length === 1) text += " \u00b7 strongest: " + strongest(tok, state.heads[0]);
    }
    ui.status.textContent = text;
  }

  function strongest(tok, h) {       // the three largest weights of a token in one head, for the status line
    var s = section(), Tk = s.key_tokens.length, w = weightsOf(state.layer, h), pairs = [];
    var n = tok.side === "q" ? Tk : s.query_tokens.length, other = tok.side === "q" ? s.key_tokens : s.query_tokens;
    for (var j = 0; j < n; j++) pairs.push([tok.side === "q" ? w[tok.index * Tk + j] : w[j * Tk + tok.index], j]);
    pairs.sort(function (a, b) { return b[0] - a[0]; });
    return pairs.slice(0, 3).map(function (p) {
      return "\u201c" + label(other[p[1]]) + "\u201d " + (p[0] / data.scale).toFixed(3);
    }).join(", ");
  }

  try {
    data = JSON.parse(root.querySelector("script.tlv-data").textContent);
    state = {section: 0, view: "head", layer: 0, heads: null, token: null, pinned: false};
    root.removeChild(root.querySelector(".tlv-loading"));
    buildBar();
    setState(data.page ? fromFragment(location.hash) : {});
    if (data.page) window.addEventListener("hashchange", function () { setState(fromFragment(location.hash)); });
    root.getBoundingClientRect();              // lay the page out before the clock stops
    root.setAttribute("data-render-ms", performance.now().toFixed(1));
    root.setAttribute("data-ready", "1");
  } catch (err) {
    root.setAttribute("data-error", String(err));
    el("p", {"class": "tlv-error"}, root, "The attention view failed: " + err);
  }
})();
