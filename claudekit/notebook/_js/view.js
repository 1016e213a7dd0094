// claudekit's front end (an anywidget module): the live view of a reply and the tool approval card.
//
// `markedLib` (the vendored marked, the Markdown parser JupyterLab itself uses) is defined just before
// this code by claudekit/notebook/_front.py.
//
// Kernel -> page: custom messages {seq, ops, reset?}. Each op adds what changed (appended text, one
// tool card, the status), so the bytes sent grow with the answer, not with its square. A page that
// missed messages (its module loaded late, a reload) asks for the whole state once ({kind: "sync"}).
// Page -> kernel: custom messages only ({kind: "view" | "sync" | "decide" | "validate" | "stop" | "insert"}),
// a view's report carrying its id (the kernel asks them again with {ping: true} when a page reconnects):
// widget state typed while a cell runs is held back by the frontend until the kernel goes idle, custom
// messages are not, so a decision carries its final arguments and reason in one message.

const md = new markedLib.Marked({ gfm: true, breaks: false });
const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
// The rules of claudekit/_markup.py (the saved copy), applied in the page: raw HTML shown as text, links
// to http(s) and mailto only, no image loaded from the network until the reader asks (a remote image URL
// can carry data out the moment it is fetched); a data: raster image renders.
const LINK = /^(https?:|mailto:)/i;
const DATA_IMAGE = /^data:image\/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]*$/i;
function hostOf(href) {
  try { return new URL(href).hostname || "an unknown host"; } catch (e) { return "an unknown host"; }
}
md.use({
  renderer: {
    html({ text }) {
      return esc(text);
    },
    link({ href, title, tokens }) {
      const body = this.parser.parseInline(tokens);
      if (!LINK.test((href || "").trim())) return body;
      return `<a href="${esc(href)}"${title ? ` title="${esc(title)}"` : ""} target="_blank" rel="noopener noreferrer">${body}</a>`;
    },
    image({ href, text }) {
      const src = (href || "").trim();
      if (DATA_IMAGE.test(src)) return `<img src="${esc(src)}" alt="${esc(text)}">`;
      if (!/^https?:/i.test(src)) return esc(`![${text}](${src})`);
      const label = `image from ${hostOf(src)}${text ? `: ${text}` : ""} — click to load`;
      return `<button type="button" class="ck-remote-image" data-src="${esc(src)}" title="${esc(src)}">🖼 ${esc(label)}</button>`;
    },
  },
});

// A remote image loads only when its placeholder is clicked.
function loadImage(event) {
  const btn = event.target.closest && event.target.closest("button.ck-remote-image");
  if (!btn) return;
  const img = document.createElement("img");
  img.src = btn.dataset.src;
  img.alt = btn.textContent;
  btn.replaceWith(img);
}

// Citation markers: the kernel sends, per text run, where each cited block's text ends and the numbers
// of its sources. Private-use sentinels mark those places in the Markdown; after rendering they become
// buttons. The model cannot forge one: its own sentinels are replaced first, and those it writes as HTML
// character references (`&#xE000;`, which marked passes through and the DOM decodes) lack this page's
// random key, so they stay text.
const MARK_OPEN = "\uE000";
const MARK_CLOSE = "\uE001";
const MARK_KEY = Array.from(crypto.getRandomValues(new Uint32Array(2)), (x) => x.toString(36)).join("");
const MARK_RE = new RegExp(`\uE000${MARK_KEY}:([0-9,]+)\uE001`);
const MARK_CHARS = /[\uE000\uE001]/g;

function withMarks(text, cites) {
  let out = text.replace(MARK_CHARS, "\uFFFD"); // same length: the offsets stay right
  if (!cites || !cites.length) return out;
  // The kernel counts characters (code points), JavaScript UTF-16 units: they differ past an emoji.
  const unit = /[\uD800-\uDFFF]/.test(out) ? unitOffsets(out) : null;
  const place = (at) => (unit ? unit[Math.min(at, unit.length - 1)] : Math.min(at, out.length));
  // From the end, so earlier offsets stay right; a marker goes before the whitespace that ends a block.
  const marks = cites.map(([at, numbers]) => [place(at), numbers]).sort((x, y) => y[0] - x[0]);
  for (const [at, numbers] of marks) {
    let k = at;
    while (k > 0 && /\s/.test(out[k - 1])) k -= 1;
    out = `${out.slice(0, k)}${MARK_OPEN}${MARK_KEY}:${numbers.map(Number).join(",")}${MARK_CLOSE}${out.slice(k)}`;
  }
  return out;
}

function unitOffsets(s) { // code point index -> UTF-16 index (one entry past the end)
  const out = [];
  let k = 0;
  for (const ch of s) { out.push(k); k += ch.length; }
  out.push(k);
  return out;
}

function sourceText(src, n) {
  if (!src) return `source ${n}`;
  const head = [src.name, src.where].filter(Boolean).join(", ");
  return src.cited ? `[${n}] ${head}: “${src.cited}”` : `[${n}] ${head}`;
}

const LIVE = new Set(["waiting", "thinking", "writing", "calling tools"]);
const states = new Map(); // per widget (its `key`): the document, shared by every view of it

function blank() {
  return {
    seq: 0, status: "waiting", elapsed: 0, at: performance.now(), final: false, model: "",
    thinking: "", thinkingLabel: "", parts: [], cards: {}, sources: {}, extras: "", error: "", foot: "",
    problems: {}, views: new Set(), lastSync: 0, canInsert: true,
  };
}

function state(model) {
  const key = model.get("key");
  if (!states.has(key)) states.set(key, blank());
  return states.get(key);
}

function apply(st, op) {
  const [kind, a, b, c] = op;
  if (kind === "status") { st.status = a; st.elapsed = b; st.at = performance.now(); st.model = c || st.model; }
  else if (kind === "think") st.thinking += a;
  else if (kind === "think_label") st.thinkingLabel = a;
  else if (kind === "text") {
    while (st.parts.length <= a) st.parts.push({ kind: "text", text: "" });
    st.parts[a].text += b;
  } else if (kind === "tool") {
    while (st.parts.length <= a) st.parts.push({ kind: "text", text: "" });
    st.parts[a] = { kind: "tool", id: b.id };
    const old = st.cards[b.id];
    st.cards[b.id] = { ...b, rawArgs: b.args ? "" : (old ? old.rawArgs : "") };
  } else if (kind === "cites") { // [[offset in the run's text, [source numbers]], ...]: the run's markers
    while (st.parts.length <= a) st.parts.push({ kind: "text", text: "" });
    st.parts[a].cites = b;
  } else if (kind === "source") st.sources[a] = b; // {name, where, cited}: what marker [a] shows
  else if (kind === "targs") {
    const card = st.cards[a];
    if (card) card.rawArgs += b;
  } else if (kind === "problem") st.problems[a] = { n: b, text: c };
  else if (kind === "extras") st.extras = a;
  else if (kind === "error") st.error = a;
  else if (kind === "foot") st.foot = a;
  else if (kind === "final") { st.final = true; st.status = a; st.foot = b; }
  else if (kind === "bare") st.bare = true; // an approval card on its own: no status line
  else if (kind === "caps") st.canInsert = a.insert !== false; // e.g. Colab ignores set_next_input
}

function receive(model, msg) {
  const st = state(model);
  if (msg.ping) { // a page reconnected: the kernel forgot its views, those still here say so
    for (const view of st.views) model.send({ kind: "view", shown: true, view: view.id });
    return;
  }
  if (msg.reset) {
    const views = st.views;
    Object.assign(st, blank(), { views });
  } else if (msg.seq !== st.seq + 1) {
    if (msg.seq > st.seq + 1) askSync(model, st);
    return;
  }
  for (const op of msg.ops) apply(st, op);
  st.seq = msg.seq;
  for (const view of st.views) view.schedule();
}

function askSync(model, st) {
  const now = performance.now();
  if (now - st.lastSync < 1000) return;
  st.lastSync = now;
  model.send({ kind: "sync", have: st.seq });
}

function el(tag, cls, html) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (html !== undefined) e.innerHTML = html;
  return e;
}

function button(label, cls, title) {
  const b = el("button", `jupyter-button widget-button ck-btn ${cls}`);
  b.type = "button";
  b.textContent = label;
  if (title) b.title = title;
  return b;
}

function elapsedText(st) {
  const secs = st.final ? st.elapsed : st.elapsed + (performance.now() - st.at) / 1000;
  return st.final ? `${secs.toFixed(1)} s` : `${Math.floor(secs)} s`;
}

// -- a code block's actions ---------------------------------------------------------------------------

function flash(btn, label) {
  const was = btn.dataset.label || btn.textContent;
  btn.dataset.label = was;
  btn.textContent = label;
  clearTimeout(btn.ckTimer);
  btn.ckTimer = setTimeout(() => { btn.textContent = was; }, 1500);
}

async function copyCode(text, btn, pre) {
  try {
    await navigator.clipboard.writeText(text);
    flash(btn, "Copied ✓");
  } catch (err) {
    // No clipboard here (a page not served over https or localhost, a refused permission): select the
    // code so that Ctrl+C copies it.
    const range = document.createRange();
    range.selectNodeContents(pre);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    flash(btn, "Selected: press Ctrl+C");
  }
}

// -- the approval part of a tool card ---------------------------------------------------------------

class Approval {
  constructor(model, card) {
    this.model = model;
    this.id = card.id;
    this.n = 0;
    this.root = el("div", "ck-approval");
    this.root.append(el("div", "ck-approval-title", `<b>Run <code>${esc(card.name)}</code> with these arguments?</b>`));
    this.editor = el("textarea", "ck-editor jp-mod-styled");
    this.editor.setAttribute("aria-label", "Arguments (JSON)");
    this.editor.spellcheck = false;
    this.editor.value = card.approval.args;
    this.editor.rows = Math.min(16, Math.max(3, card.approval.args.split("\n").length + 1));
    this.editor.hidden = true;
    this.problem = el("div", "ck-problem");
    this.approve = button("Approve", "mod-primary ck-approve", `Run ${card.name} with these arguments`);
    this.deny = button("Deny", "mod-danger ck-deny", "Do not run it; Claude is told you denied it (with the reason, if you give one)");
    this.edit = button("Edit", "ck-edit", "Edit the arguments (JSON) before approving");
    this.always = button("Always allow this tool", "ck-always", `Approve, and run ${card.name} without asking for the rest of this chat`);
    const row = el("div", "ck-buttons");
    row.append(this.approve, this.deny, this.edit, this.always);
    const group = card.approval.group;
    if (card.approval.first && group > 1) {
      this.approveAll = button(`Approve all (${group})`, "mod-primary ck-approve-all", `Approve all ${group} tool calls of this step as they are`);
      this.denyAll = button(`Deny all (${group})`, "mod-danger ck-deny-all", `Deny all ${group} tool calls of this step`);
      row.append(this.approveAll, this.denyAll);
    }
    this.reason = el("input", "ck-reason jp-mod-styled");
    this.reason.type = "text";
    this.reason.placeholder = "reason for denying (optional, told to Claude)";
    this.reason.setAttribute("aria-label", "Reason for denying");
    this.root.append(this.editor, this.problem, row, this.reason);
    this.original = card.approval.args;
    this.pending = false;
    const decide = (action) => () => this.decide(action);
    this.approve.onclick = decide("approve");
    this.always.onclick = decide("always");
    this.deny.onclick = decide("deny");
    if (this.approveAll) this.approveAll.onclick = decide("approve_all");
    if (this.denyAll) this.denyAll.onclick = decide("deny_all");
    this.edit.onclick = () => {
      this.editor.hidden = !this.editor.hidden;
      this.edit.textContent = this.editor.hidden ? "Edit" : "Done editing";
      if (!this.editor.hidden) this.editor.focus();
    };
    this.editor.oninput = () => this.edited();
    this.timer = null;
  }

  text() {
    return this.editor.value === this.original ? null : this.editor.value;
  }

  localProblem() {
    const text = this.text();
    if (text === null) return null;
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) return "The arguments must be a JSON object.";
    } catch (err) {
      return `Not valid JSON: ${err.message}`;
    }
    return null;
  }

  edited() {
    this.n += 1;
    this.sync(null);
    clearTimeout(this.timer);
    if (this.localProblem() === null && this.text() !== null) {
      const n = this.n;
      // The kernel checks the arguments against the tool's schema (one message per pause in typing).
      this.timer = setTimeout(() => this.model.send({ kind: "validate", id: this.id, text: this.editor.value, n }), 250);
    }
  }

  decide(action) {
    if (this.pending) return;
    this.pending = true;
    this.sync(null);
    this.model.send({ kind: "decide", id: this.id, action, text: this.text(), reason: this.reason.value });
  }

  // Enable or disable the controls from the local JSON check and the kernel's last schema check.
  sync(st) {
    const kernel = st ? st.problems[this.id] : null;
    if (kernel && kernel.n === -1) this.pending = false; // the kernel refused a decision: edit again
    const local = this.localProblem();
    const remote = kernel && (kernel.n === this.n || kernel.n === -1) ? kernel.text : null;
    const problem = local || remote;
    this.problem.textContent = problem || "";
    this.problem.hidden = !problem;
    const blocked = this.pending || Boolean(problem);
    this.approve.disabled = this.always.disabled = blocked;
    this.deny.disabled = this.pending;
    if (this.approveAll) this.approveAll.disabled = this.denyAll.disabled = this.pending;
  }
}

// -- one view of the live document ------------------------------------------------------------------

class View {
  constructor(model, root) {
    this.model = model;
    this.st = state(model);
    this.root = root;
    root.classList.add("claudekit-live", "jp-RenderedHTMLCommon", "jp-RenderedMarkdown");
    this.thinking = el("details", "ck-thinking tex2jax_ignore mathjax_ignore");
    this.thinkingSummary = el("summary");
    this.thinkingBody = el("blockquote");
    this.thinking.append(this.thinkingSummary, this.thinkingBody);
    this.thinking.hidden = true;
    this.parts = el("div", "ck-parts");
    this.parts.addEventListener("click", loadImage);
    this.extras = el("div", "ck-extras tex2jax_ignore mathjax_ignore");
    this.error = el("blockquote", "ck-error tex2jax_ignore mathjax_ignore");
    this.status = el("div", "ck-status tex2jax_ignore mathjax_ignore");
    this.statusText = el("span", "ck-status-text");
    this.dots = el("span", "ck-dots");
    this.dots.setAttribute("aria-hidden", "true");
    this.stop = button("Stop", "ck-stop", "Stop the reply (as interrupting the kernel does); the partial answer is kept");
    this.stop.onclick = () => {
      this.stop.disabled = true;
      this.model.send({ kind: "stop" });
    };
    this.status.append(this.statusText, this.dots, this.stop);
    this.foot = el("p", "ck-foot");
    root.append(this.thinking, this.parts, this.extras, this.error, this.status, this.foot);
    this.shown = []; // per part: [kind, element, rendered length or card json]
    this.approvals = {};
    this.frame = 0;
    this.tick = setInterval(() => this.renderStatus(), 1000);
    this.render();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    const st = this.st;
    if (st.thinking || st.thinkingLabel) {
      this.thinking.hidden = false;
      const label = esc(st.thinkingLabel || "Thinking");
      if (this.thinkingSummary.innerHTML !== label) this.thinkingSummary.innerHTML = label;
      if (this.thinkingBody.textContent.length !== st.thinking.length) this.thinkingBody.textContent = st.thinking;
    }
    st.parts.forEach((part, i) => this.renderPart(part, i));
    this.extras.innerHTML = st.extras;
    this.extras.hidden = !st.extras;
    this.error.innerHTML = st.error ? `⚠ <b>error:</b> ${esc(st.error)}` : "";
    this.error.hidden = !st.error;
    this.foot.innerHTML = st.foot ? `<sub class="tex2jax_ignore mathjax_ignore">${esc(st.foot)}</sub>` : "";
    if (st.final) for (const b of this.parts.querySelectorAll(".ck-insert")) b.hidden = true;
    this.renderStatus();
  }

  renderStatus() {
    const st = this.st;
    this.status.hidden = st.final || st.bare;
    if (st.final || st.bare) { clearInterval(this.tick); return; }
    const model = st.model ? ` · ${esc(st.model)}` : "";
    this.statusText.innerHTML = `<b class="ck-dot ck-${st.status.replace(/ /g, "-")}">●</b> <b>${esc(st.status)}</b>${model} · ${elapsedText(st)}`;
    this.dots.classList.toggle("ck-typing", LIVE.has(st.status));
  }

  renderPart(part, i) {
    let shown = this.shown[i];
    if (!shown || shown[0] !== part.kind) {
      const node = part.kind === "text" ? el("div", "ck-text") : el("details", "ck-tool tex2jax_ignore mathjax_ignore");
      if (shown) this.parts.replaceChild(node, shown[1]); else this.parts.append(node);
      shown = this.shown[i] = [part.kind, node, null];
    }
    if (part.kind === "text") {
      const stamp = part.cites ? `${part.text.length} ${JSON.stringify(part.cites)}` : part.text.length;
      if (shown[2] !== stamp) {
        this.renderText(shown[1], withMarks(part.text, part.cites));
        shown[2] = stamp;
      }
      return;
    }
    const card = this.st.cards[part.id];
    const stamp = card ? JSON.stringify(card) + card.rawArgs.length : "";
    if (shown[2] !== stamp) {
      this.renderCard(shown[1], card);
      shown[2] = stamp;
    }
    const appr = this.approvals[part.id];
    if (appr) appr.sync(this.st);
  }

  // Block by block, keeping the nodes of blocks that did not change: a code block's buttons must stay
  // under the pointer while the rest of the answer streams in (a node replaced between press and release
  // loses the click).
  renderText(node, text) {
    const fresh = el("div");
    fresh.innerHTML = md.parse(text);
    const blocks = Array.from(fresh.childNodes);
    blocks.forEach((block, i) => {
      const source = block.nodeType === 1 ? block.outerHTML : block.textContent;
      const old = node.childNodes[i];
      if (old && old.ckSource === source) return;
      const shown = block.nodeType === 1 && block.tagName === "PRE" ? this.codeBlock(block) : block;
      if (block.nodeType === 1) this.citeMarks(block);
      shown.ckSource = source;
      if (old) node.replaceChild(shown, old);
      else node.append(shown);
    });
    while (node.childNodes.length > blocks.length) node.lastChild.remove();
  }

  // The sentinels withMarks put in the text become marker buttons: built with createElement and
  // textContent only (the cited text is model data), and a click shows the source in a note below.
  citeMarks(root) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const found = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) if (n.data.includes(MARK_OPEN)) found.push(n);
    for (const node of found) {
      const pieces = node.data.split(MARK_RE);
      const frag = document.createDocumentFragment();
      pieces.forEach((piece, k) => {
        if (k % 2 === 0) { // text; a sentinel left in it was not placed here: shown as U+FFFD
          if (piece) frag.append(document.createTextNode(piece.replace(MARK_CHARS, "\uFFFD")));
          return;
        }
        const sup = el("sup", "ck-cite");
        for (const n of piece.split(",")) sup.append(this.citeButton(Number(n)));
        frag.append(sup);
      });
      node.replaceWith(frag);
    }
  }

  citeButton(n) {
    const btn = el("button", "ck-cite-mark");
    btn.type = "button";
    btn.textContent = `[${n}]`;
    btn.dataset.n = String(n);
    btn.title = sourceText(this.st.sources[n], n);
    btn.setAttribute("aria-label", `source ${n}`);
    btn.onclick = (event) => {
      event.preventDefault();
      const sup = btn.parentElement;
      const open = sup.nextSibling && sup.nextSibling.ckNoteFor;
      if (open) sup.nextSibling.remove();
      if (open === n) return;
      const note = el("span", "ck-cite-note");
      note.setAttribute("role", "note");
      note.textContent = sourceText(this.st.sources[n], n);
      note.ckNoteFor = n;
      sup.after(note);
    };
    return btn;
  }

  // A code block with Copy and, while the cell runs, Insert below (a new cell when the cell ends: the
  // kernel asks the frontend through IPython's set_next_input, which only rides on a running cell).
  codeBlock(pre) {
    const wrap = el("div", "ck-code");
    const bar = el("div", "ck-code-actions");
    const code = () => (pre.querySelector("code") || pre).textContent.replace(/\n$/, "");
    const copy = button("Copy", "ck-copy", "Copy this code");
    copy.onclick = () => copyCode(code(), copy, pre);
    bar.append(copy);
    if (this.st.canInsert) {
      const insert = button("Insert below", "ck-insert", "Put this code in a new cell below when the cell ends (it is not run)");
      insert.onclick = () => {
        this.model.send({ kind: "insert", code: code() });
        insert.disabled = true;
        insert.textContent = "Goes below ✓";
      };
      insert.hidden = this.st.final;
      bar.append(insert);
    }
    wrap.append(bar, pre);
    return wrap;
  }

  renderCard(node, card) {
    if (!card) return;
    let summary = `🔧 ${esc(card.name)}${card.mcp ? ` · ${esc(card.mcp)}` : ""} — ${esc(card.status)}`;
    if (card.result) summary += `: ${esc(card.short || card.result)}`;
    if (card.decided) summary += ` · ${esc(card.decided)}`;
    const waiting = Boolean(card.approval && !card.decided);
    const keep = this.approvals[card.id];
    node.innerHTML = `<summary>${summary}</summary>`;
    const args = card.args || card.rawArgs;
    if (args && args !== "{}") {
      const pre = el("pre");
      const code = el("code");
      code.textContent = args;
      pre.append(code);
      node.append(pre);
    }
    if (card.mcp) node.append(el("div", "ck-server", `<b>Server:</b> ${esc(card.mcp)}`));
    if (card.result) node.append(el("div", "ck-result", `<b>Result:</b> ${esc(card.result)}`));
    if (card.details && card.details.length) {
      // A server tool's results: plain lines (titles and hosts, stdout), never links or markup.
      const list = el("ul", "ck-details");
      for (const line of card.details) {
        const item = el("li");
        item.textContent = String(line);
        list.append(item);
      }
      node.append(list);
    }
    if (waiting) {
      const appr = keep || new Approval(this.model, card);
      this.approvals[card.id] = appr;
      node.append(appr.root);
      node.open = true;
    } else {
      delete this.approvals[card.id];
      if (keep || card.decided) node.open = false;
    }
  }

  remove() {
    clearInterval(this.tick);
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}

function initialize({ model }) {
  const st = state(model);
  model.on("msg:custom", (msg) => receive(model, msg));
  // The first message came in the opening state.
  const init = model.get("init");
  if (init && init.seq && !st.seq) receive(model, { ...init, reset: true });
  // Messages sent before this module was loaded were missed: ask for what the kernel has so far.
  askSync(model, st);
}

function render({ model, el: root }) {
  const st = state(model);
  const view = new View(model, root);
  view.id = Math.random().toString(36).slice(2); // a page reload keeps no views: the kernel counts by id
  st.views.add(view);
  model.send({ kind: "view", shown: true, view: view.id });
  return () => {
    st.views.delete(view);
    view.remove();
    if (!st.final) model.send({ kind: "view", shown: false, view: view.id });
  };
}

export default { initialize, render };
