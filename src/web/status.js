"use strict";
// The status when the page was served; then GET /api/status every second.
const initial = /*INITIAL_STATUS*/null;
// The per-run token from the address the peer printed (?token=...): it
// unlocks the actions; without it the page only shows.
const token = new URLSearchParams(location.search).get("token") || "";
const UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

// Same rules as format_size in src/ui.rs: "745 B", "1.0 GiB".
function size(n) {
  if (n < 1024) return n + " B";
  let v = n / 1024, u = 0;
  while (v >= 1023.95 && u + 1 < UNITS.length) { v /= 1024; u++; }
  return v.toFixed(1) + " " + UNITS[u];
}
function duration(s) {
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
  return Math.floor(s / 3600) + " h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + " min";
}
function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
// Every piece of text goes through textContent, and through shown(): names
// come from other peers. shown() writes each control, bidi or invisible
// character as \u{xxxx}, as the REPL and the logs do (name.rs
// `is_deceptive`, the same set): names are refused with them; this is the
// second line.
const DECEPTIVE = /[\p{Cc}\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}]/gu;
function shown(text) {
  return String(text).replace(DECEPTIVE, c => "\\u{" + c.codePointAt(0).toString(16).padStart(4, "0") + "}");
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = shown(text);
  return e;
}
function add(parent, ...kids) { kids.forEach(k => parent.appendChild(k)); return parent; }
function setText(e, text) { text = shown(text); if (e.textContent !== text) e.textContent = text; }
function fact(value, label) { return add(el("div", "fact"), el("b", "", value), el("span", "", label)); }
function table(headers, rows) {
  const t = el("table"), head = el("tr", "head");
  headers.forEach(([h, cls]) => head.appendChild(el("th", cls || "", h)));
  t.appendChild(head);
  rows.forEach(cells => {
    const tr = el("tr");
    cells.forEach((c, i) => { c.dataset.label = headers[i][0]; tr.appendChild(c); });
    t.appendChild(tr);
  });
  return t;
}
function td(text, cls, title) {
  const c = el("td", cls || "", text);
  if (title) c.title = title;
  return c;
}
function percent(done, total) {
  return total > 0 ? Math.floor(done * 1000 / total) / 10 : 100;
}
function say(node, text, kind) {
  node.className = "msg" + (kind ? " " + kind : "");
  node.textContent = shown(text);
}
// Keeps `list`'s children one per item, in order, by key: existing nodes are
// updated in place, so a button is never replaced under a click.
function sync(list, items, key, make, update) {
  const old = new Map([...list.children].map(c => [c.dataset.key, c]));
  let prev = null;
  items.forEach(item => {
    const k = String(key(item));
    let node = old.get(k);
    if (node) old.delete(k);
    else { node = make(item); node.dataset.key = k; }
    update(node, item);
    const want = prev ? prev.nextSibling : list.firstChild;
    if (node !== want) list.insertBefore(node, want);
    prev = node;
  });
  old.forEach(n => n.remove());
}

// ---- actions: POSTs with the token -------------------------------------
let tokenRefused = "";
async function call(path, body) {
  const opts = { cache: "no-store", headers: { "X-P2pshare-Token": token } };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (r.status === 403) refuseToken(data && data.error || "HTTP 403");
  if (!r.ok) {
    const e = new Error(data && data.error ? data.error : "HTTP " + r.status);
    e.data = data;
    throw e;
  }
  return data;
}
function canAct() { return token !== "" && tokenRefused === ""; }
function refuseToken(why) {
  if (!/token/.test(why)) return;
  tokenRefused = why + " (has the peer restarted? open the address it printed last)";
  updateLock();
}
function updateLock() {
  const note = document.getElementById("locked");
  if (!note) return;
  note.hidden = canAct();
  note.textContent = tokenRefused || "This page only shows: to add, cancel or resume downloads, share files, set caps and copy links, "
    + "open it at the address the peer printed at start (it ends in ?token=…).";
  document.querySelectorAll("input.needs-token, button.form-button").forEach(e => { e.disabled = !canAct(); });
  document.querySelectorAll("#share-list .share").forEach(fillLinks);
}

async function copy(input, msg, what) {
  input.focus();
  input.select();
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
    await navigator.clipboard.writeText(input.value);
    say(msg, what + " copied to the clipboard", "ok");
  } catch (_) {
    let done = false;
    try { done = document.execCommand("copy"); } catch (_) { /* unsupported */ }
    say(msg, done ? what + " copied to the clipboard" : what + " selected: press Ctrl+C to copy it", done ? "ok" : "");
  }
}

// ---- the peer's page ---------------------------------------------------
function makeDownload() {
  const box = el("div", "dl"), r = {};
  r.name = el("span", "dl-name"); r.state = el("span"); r.pct = el("span", "pct");
  r.fill = el("div"); r.bar = add(el("div", "bar"), r.fill);
  r.meta = el("div", "meta"); r.error = el("div", "error-text"); r.pills = el("div", "pills");
  r.cancel = el("button", "quiet needs-token cancel", "Cancel");
  r.cancel.type = "button";
  r.msg = el("span", "msg");
  r.actions = add(el("div", "row"), r.cancel, r.msg);
  r.cancel.addEventListener("click", async () => {
    r.cancel.disabled = true;
    say(r.msg, "Cancelling…");
    try {
      await call("/api/cancel", { key: Number(box.dataset.key) });
      say(r.msg, "Cancelling; verified chunks are kept", "ok");
      refresh();
    } catch (e) {
      say(r.msg, e.message, "error");
      r.cancel.disabled = !canAct();
    }
  });
  add(box, add(el("div", "dl-head"), r.name, r.state, r.pct), r.bar, r.meta, r.error, r.pills, r.actions);
  box.refs = r;
  return box;
}
function updateDownload(box, d) {
  const r = box.refs, pct = percent(d.done_bytes, d.size);
  const live = d.state === "running" || d.state === "waiting";
  setText(r.name, d.name);
  r.state.className = "state " + d.state;
  setText(r.state, d.state === "waiting" ? "waiting for peers" : d.state);
  setText(r.pct, pct.toFixed(1) + "%");
  r.bar.className = "bar " + d.state;
  r.fill.style.width = pct + "%";
  const parts = [
    size(d.done_bytes) + " of " + size(d.size) + " (" + d.done_bytes + " / " + d.size + " bytes)",
    "chunks " + d.done_chunks + "/" + d.total_chunks,
    ...(d.files_total > 0 ? ["files " + d.files_done + "/" + d.files_total] : []),
    size(d.rate) + "/s" + (live ? "" : " average"),
  ];
  if (d.eta_secs !== null && live) parts.push("ETA " + duration(d.eta_secs));
  if (live) parts.push(plural(d.peers.filter(p => p.active).length, "peer") + " in use");
  else parts.push("took " + duration(Math.round(d.elapsed_secs)));
  if (d.from_partial_bytes > 0)
    parts.push(size(d.from_partial_bytes) + " from peers still downloading, "
      + size(d.from_complete_bytes) + " from complete ones");
  // Bytes by the path they came on, once some did not come directly.
  const via = d.bytes_by_path || {};
  if (via.punched || via.relayed)
    parts.push(["direct", "punched", "relayed"].filter(p => via[p] > 0)
      .map(p => size(via[p]) + " " + p).join(", "));
  setText(r.meta, parts.join(" · "));
  setText(r.error, d.error || "");
  r.error.hidden = !d.error;
  r.pills.replaceChildren(...d.peers.map(p =>
    el("span", "pill" + (p.active ? " active" : ""), p.addr + " · " + (p.path || "direct") + " · " + plural(p.chunks, "chunk"))));
  r.pills.hidden = !d.peers.length;
  r.actions.hidden = !live || !canAct();
  if (!live) r.cancel.disabled = true;
  else if (!r.msg.textContent) r.cancel.disabled = !canAct();
}

// Links and tickets, by file id, from GET /api/shares (behind the token:
// a private share's carry its secret).
let links = new Map(), linksFor = null, linksBusy = false;
async function loadLinks(s) {
  const want = s.shared.filter(f => f.complete).map(f => f.id + (f.private ? "p" : "")).join(",");
  if (!canAct() || linksBusy || want === linksFor) return;
  linksBusy = true;
  try {
    const got = await call("/api/shares");
    links = new Map(got.shares.map(f => [f.id, f]));
    linksFor = want;
    document.querySelectorAll("#share-list .share").forEach(box => fillLinks(box));
  } catch (_) { /* shown by refuseToken, or retried on the next poll */ }
  finally { linksBusy = false; }
}
function copyRow(label, what, msg) {
  const l = el("label", "", label), input = el("input", "copy-text"), button = el("button", "quiet", "Copy " + what);
  input.type = "text"; input.readOnly = true; input.spellcheck = false;
  input.addEventListener("focus", () => input.select());
  button.type = "button";
  button.addEventListener("click", () => copy(input, msg, what[0].toUpperCase() + what.slice(1)));
  l.appendChild(input);
  const row = add(el("div", "copy-row " + what), l, button);
  row.input = input;
  return row;
}
function makeShare() {
  const box = el("div", "share"), r = {};
  r.name = el("span", "share-name"); r.kind = el("span", "badge"); r.meta = el("div", "meta");
  r.msg = el("span", "msg");
  r.link = copyRow("Share link", "link", r.msg);
  r.ticket = copyRow("Ticket (for peer get, or the box above on another peer)", "ticket", r.msg);
  r.stop = stopButton(box, r.msg);
  add(box, add(el("div", "dl-head"), r.name, r.kind), r.meta, r.link, r.ticket, add(el("div", "row"), r.stop), r.msg);
  box.refs = r;
  return box;
}
function fillLinks(box) {
  const r = box.refs, f = links.get(box.dataset.key);
  for (const [row, value] of [[r.link, f && f.link], [r.ticket, f && f.ticket]]) {
    if (row.input.value !== (value || "")) row.input.value = value || "";
    row.hidden = !canAct() || !value;
  }
}
function updateShare(box, f) {
  const r = box.refs;
  setText(r.name, f.files > 0 ? f.name + "/ (" + plural(f.files, "file") + ")" : f.name);
  setText(r.kind, f.private ? "private" : f.complete ? "public" : "downloading");
  setText(r.meta, [size(f.size) + " (" + f.size + " bytes)",
    "uploaded " + size(f.uploaded) + (f.uploaded_while_partial ? " (" + size(f.uploaded_while_partial)
      + " while downloading)" : ""), "id " + f.id].join(" · "));
  fillLinks(box);
  r.stop.hidden = !f.complete || !canAct();
}

function setupPeer(main) {
  const facts = el("div", "facts");
  facts.id = "facts";
  const peerId = el("dd"), trackerId = el("dd"), trackerLabel = el("dt", "", "Tracker id");
  peerId.id = "peer-id";
  trackerId.id = "tracker-id";
  const ids = add(el("section"), el("h2", "", "Identity"),
    add(el("dl", "ids"), el("dt", "", "Peer id"), peerId, trackerLabel, trackerId));
  ids.id = "ids";
  const dls = add(el("section"), el("h2", "", "Downloads"), el("p", "empty", "No downloads yet."), el("div", "list"));
  dls.id = "downloads";
  dls.lastChild.id = "dl-list";
  const shared = add(el("section"), el("h2", "", "Shared files"), el("p", "empty", "Nothing shared yet."), el("div", "list"));
  shared.id = "shared";
  shared.lastChild.id = "share-list";
  const left = add(el("section"), el("h2", "", "Unfinished (resume continues them)"),
    resumeRow(), el("div", "list"));
  left.id = "unfinished";
  add(main, facts, addForm(), dls, shared, shareForm(), left, capsForm(), ids);
}
function renderPeer(s) {
  const uploaded = s.shared.reduce((sum, f) => sum + f.uploaded, 0);
  const running = s.downloads.filter(d => d.state === "running" || d.state === "waiting").length;
  const cap = c => c === null ? "no cap" : size(c) + "/s";
  document.getElementById("facts").replaceChildren(
    fact(String(running), "downloads running"),
    fact(String(s.shared.length), "files shared"),
    fact(size(uploaded), "uploaded"),
    fact(cap(s.caps.download), "download cap"),
    fact(cap(s.caps.upload), "upload cap"),
    fact(s.tracker || "none", "tracker"),
    ...(s.port_map ? [fact(s.port_map.mapped ? s.port_map.external
                             : s.port_map.trying ? "asking" : "none", "port mapping")] : []),
    ...(s.dht ? [fact(String(s.dht.routing_table), "DHT nodes known"),
                 fact(s.dht.last_announce_secs_ago === null ? "not yet"
                        : s.dht.last_announce_secs_ago + " s ago", "last DHT announce")] : []));
  // Updated in place only when they change, so a selection survives polls.
  setText(document.getElementById("peer-id"), s.id);
  const trackerId = document.getElementById("tracker-id");
  setText(trackerId, s.tracker_id || "not known yet (no answer from the tracker so far)");
  trackerId.hidden = trackerId.previousSibling.hidden = !s.tracker;
  const list = document.getElementById("dl-list");
  list.previousSibling.hidden = s.downloads.length > 0;
  sync(list, s.downloads.slice().reverse(), d => d.key, makeDownload, updateDownload);
  const shares = document.getElementById("share-list");
  shares.previousSibling.hidden = s.shared.length > 0;
  sync(shares, s.shared, f => f.id, makeShare, updateShare);
  const left = document.getElementById("unfinished");
  left.hidden = !s.unfinished || !s.unfinished.length;
  sync(left.lastChild, s.unfinished || [], u => u.id + " " + u.out, makeUnfinished, updateUnfinished);
  updateLock();
  loadLinks(s);
}

// ---- the tracker's page ------------------------------------------------
function renderTracker(s, main) {
  const facts = add(el("div", "facts"),
    fact(String(s.total_files), "files"),
    fact(String(s.registrations), "registrations"));
  if (s.id) facts.appendChild(fact(s.id, "tracker id"));
  const files = add(el("section"), el("h2", "", "Files"));
  if (!s.files.length) files.appendChild(el("p", "empty", "No files registered."));
  else files.appendChild(table(
    [["Name"], ["Size", "num"], ["Peers", "num"], ["Who has it"], ["Id"]],
    s.files.map(f => {
      const who = el("td"), pills = el("div", "pills");
      f.peers.forEach(p => pills.appendChild(
        el("span", "pill active", p.addr + (p.complete ? "" : " · partial") + " · " + Math.round(p.last_seen_secs) + " s ago")));
      who.appendChild(pills);
      return [td(f.name, "name"), td(size(f.size), "num", f.size + " bytes"),
              td(String(f.peer_count), "num"), who, td(f.id.slice(0, 12), "id", f.id)];
    })));
  if (s.files.length < s.total_files) {
    files.appendChild(el("p", "empty", "Showing " + s.files.length + " of " + s.total_files + " files."));
  }
  main.replaceChildren(facts, files);
}

let role = null;
function render(s) {
  document.getElementById("role").textContent = s.role;
  document.getElementById("listen").textContent = s.listen + " · v" + s.version;
  document.title = "p2pshare " + s.role + " " + s.listen;
  const main = document.getElementById("main");
  if (s.role === "tracker") { renderTracker(s, main); return; }
  if (role !== s.role) { main.replaceChildren(); setupPeer(main); role = s.role; }
  renderPeer(s);
}

function setLive(ok, text) {
  document.getElementById("dot").className = "dot " + (ok ? "on" : "off");
  document.getElementById("live").textContent = text;
}

// One poll at a time; refresh() asks for the next one now.
let timer = 0, polling = false, again = false;
async function poll() {
  clearTimeout(timer);
  if (polling) { again = true; return; }
  polling = true;
  try {
    const r = await fetch("/api/status", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    setLive(true, "live · " + new Date().toLocaleTimeString());
  } catch (e) {
    setLive(false, "disconnected (" + e.message + ")");
  } finally {
    polling = false;
    timer = setTimeout(poll, again ? 0 : 1000);
    again = false;
  }
}
function refresh() { poll(); }

if (initial) { render(initial); setLive(true, "live"); }
timer = setTimeout(poll, initial ? 1000 : 0);
