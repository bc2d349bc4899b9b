// ---- the peer page's forms (behind the token) --------------------------
// Concatenated after status.js into the page's one script.

function textField(id, label, hint) {
  const l = el("label", "", label), i = el("input", "needs-token");
  i.type = "text"; i.id = id; i.placeholder = hint; i.autocomplete = "off"; i.spellcheck = false;
  l.appendChild(i);
  return l;
}
function formButton(id, text) {
  const b = el("button", "needs-token form-button", text);
  b.type = "submit";
  b.id = id;
  return b;
}
function message(id) {
  const m = el("p", "msg");
  m.id = id;
  m.setAttribute("role", "status");
  return m;
}
// Runs `action` on submit with the button held, saying its outcome in `msg`.
function onSubmit(form, button, msg, action) {
  form.noValidate = true;
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    button.disabled = true;
    try {
      const done = await action();
      say(msg, done, "ok");
      refresh();
    } catch (e) {
      say(msg, e.message, "error");
    } finally {
      button.disabled = !canAct();
    }
  });
}

function addForm() {
  const box = add(el("section"), el("h2", "", "Add a download"));
  box.id = "add";
  const form = el("form");
  form.id = "add-form";
  form.noValidate = true;
  const field = textField;
  const button = formButton("add-button", "Download");
  add(form, field("target", "Ticket, link, name or id", "p2pshare:… or a file name"),
      field("out", "Save as (optional): a file or a directory, on the peer's machine", "default: its name, where the peer runs"),
      button);
  const msg = el("p", "msg");
  msg.id = "add-msg";
  msg.setAttribute("role", "status");
  const choices = el("ul", "candidates");
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const target = document.getElementById("target"), out = document.getElementById("out");
    choices.replaceChildren();
    if (!target.value.trim()) { say(msg, "Give a ticket, link, name or id.", "error"); return; }
    button.disabled = true;
    say(msg, "Looking for " + target.value.trim() + "…");
    try {
      const body = { target: target.value.trim() };
      if (out.value.trim()) body.out = out.value.trim();
      const d = await call("/api/download", body);
      say(msg, "Started [" + d.key + "] " + d.name + " from " + plural(d.peers, "peer") + ", saving as " + d.out, "ok");
      target.value = "";
      out.value = "";
      refresh();
    } catch (e) {
      say(msg, e.message, "error");
      ((e.data && e.data.candidates) || []).forEach(c => {
        const use = el("button", "quiet", "Use this one");
        use.type = "button";
        use.addEventListener("click", () => { target.value = c.id; target.focus(); });
        choices.appendChild(add(el("li"), el("code", "", c.id.slice(0, 16) + "…"),
          el("span", "", c.name + " · " + size(c.size) + " · " + plural(c.peers, "peer")), use));
      });
    } finally {
      button.disabled = !canAct();
    }
  });
  const locked = el("p", "note");
  locked.id = "locked";
  return add(box, locked, form, msg, choices);
}


function shareForm() {
  const box = add(el("section"), el("h2", "", "Share a file"));
  box.id = "share";
  const form = el("form"), button = formButton("share-button", "Share"), msg = message("share-msg");
  const priv = el("input", "needs-token");
  priv.type = "checkbox"; priv.id = "share-private";
  const check = add(el("label", "check"), priv, el("span", "", " Private: only holders of its link or ticket can fetch it"));
  add(form, textField("share-path", "Path of a file, on the peer's machine", "e.g. ~/photos/holiday.tar"), check, button);
  onSubmit(form, button, msg, async () => {
    const path = document.getElementById("share-path");
    if (!path.value.trim()) throw new Error("Give the path of a file.");
    say(msg, "Hashing " + path.value.trim() + "…");
    const f = await call("/api/share", { path: path.value.trim(), private: priv.checked });
    path.value = "";
    return "Shared " + f.name + " (id " + f.id.slice(0, 16) + "…)";
  });
  return add(box, form, msg);
}
function stopButton(box, msg) {
  const b = el("button", "quiet needs-token", "Stop sharing");
  b.type = "button";
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const u = await call("/api/unshare", { target: box.dataset.key });
      say(msg, "No longer sharing " + u.name + " (the file itself is untouched)", "ok");
      refresh();
    } catch (e) {
      say(msg, e.message, "error");
    } finally {
      b.disabled = !canAct();
    }
  });
  return b;
}
async function resume(which, msg) {
  const r = await call("/api/resume", which ? { which: which } : {});
  say(msg, r.started.length ? "Resumed " + r.started.map(d => d.name + " → " + d.out).join(", ")
    : "Nothing left to resume (finished meanwhile)", "ok");
  refresh();
}
function resumeButton(text, which, msg) {
  const b = el("button", "quiet needs-token", text);
  b.type = "button";
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await resume(which(), msg); } catch (e) { say(msg, e.message, "error"); } finally { b.disabled = !canAct(); }
  });
  return b;
}
function resumeRow() {
  const msg = message("resume-msg"), b = resumeButton("Resume all", () => null, msg);
  b.id = "resume-all";
  return add(el("div", "row"), b, msg);
}
function makeUnfinished() {
  const box = el("div", "meta"), r = {};
  r.name = el("b"); r.out = el("span"); r.msg = el("span", "msg");
  r.go = resumeButton("Resume", () => box.dataset.id, r.msg);
  add(box, r.name, r.out, r.go, r.msg);
  box.refs = r;
  return box;
}
function updateUnfinished(box, u) {
  const r = box.refs;
  box.dataset.id = u.id;
  setText(r.name, u.name);
  setText(r.out, " → " + u.out + " ");
  r.go.hidden = !canAct();
  document.getElementById("resume-all").hidden = !canAct();
}
function capsForm() {
  const box = add(el("section"), el("h2", "", "Bandwidth caps"));
  box.id = "caps";
  const form = el("form"), button = formButton("caps-button", "Set caps"), msg = message("caps-msg");
  add(form, textField("cap-up", "Upload cap (blank: unchanged)", "e.g. 500K, 10M, or off"),
    textField("cap-down", "Download cap (blank: unchanged)", "e.g. 500K, 10M, or off"), button);
  onSubmit(form, button, msg, async () => {
    const up = document.getElementById("cap-up"), down = document.getElementById("cap-down");
    const body = {};
    if (up.value.trim()) body.upload = up.value.trim();
    if (down.value.trim()) body.download = down.value.trim();
    if (!body.upload && !body.download) throw new Error("Give an upload or a download cap.");
    const c = await call("/api/limit", body);
    up.value = ""; down.value = "";
    const cap = v => v === null ? "off" : size(v) + "/s";
    return "Caps now: upload " + cap(c.upload) + ", download " + cap(c.download);
  });
  return add(box, form, msg);
}
