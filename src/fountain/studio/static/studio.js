// fountain studio: one page, three views (Spec, Run, Data) over the JSON API of fountain.studio.
// Every text from a spec, a run or a server goes through textContent: nothing is parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { folder: 0, checkSeq: 0, events: null, records: [], selected: null, diagramSeq: 0 };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(`/api/folders/${state.folder}${path}`, options);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw Object.assign(new Error(data.error || `HTTP ${response.status}`), { data });
  return data;
}

// --- pages -------------------------------------------------------------------------------------

function showPage() {
  const name = (location.hash || "#spec").slice(1);
  for (const page of ["spec", "run", "data"]) {
    $(`page-${page}`).classList.toggle("active", page === name);
    $(`tab-${page}`).classList.toggle("active", page === name);
  }
  if (name === "data") loadRecords();
}

async function openFolder(index) {
  state.folder = index;
  const spec = await api("/spec");
  $("folder-path").textContent = spec.folder;
  $("setup").value = spec["setup.yaml"];
  $("diagram").value = spec["diagram.mermaid"];
  $("saved").textContent = "";
  check();
  watchRun();
  if ((location.hash || "#spec") === "#data") loadRecords();
}

// --- spec --------------------------------------------------------------------------------------

let checkTimer = null;
function scheduleCheck() {
  clearTimeout(checkTimer);
  $("saved").textContent = "unsaved changes";
  checkTimer = setTimeout(check, 350);
}

function texts() {
  return { "setup.yaml": $("setup").value, "diagram.mermaid": $("diagram").value };
}

// "…/setup.yaml:8:15" -> select line 8 of the setup.yaml editor (likewise diagram.mermaid).
function jumpTo(location) {
  const match = /(setup\.yaml|diagram\.mermaid):(\d+)(?::(\d+))?$/.exec(location || "");
  if (!match) return;
  const area = $(match[1] === "setup.yaml" ? "setup" : "diagram");
  const lines = area.value.split("\n");
  const line = Math.min(Number(match[2]), lines.length) - 1;
  const start = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + lines[line].length);
  area.scrollTop = Math.max(0, (line - 3) * parseFloat(getComputedStyle(area).lineHeight || "16"));
}

function problemItem(problem, cls) {
  const item = el("li", { class: cls || "" });
  if (problem.location) {
    const loc = el("a", { class: "loc", href: "#spec", title: "go to this line", text: problem.location + ": " });
    loc.addEventListener("click", (event) => { event.preventDefault(); jumpTo(problem.location); });
    item.append(loc);
  }
  item.append(problem.message);
  if (problem.hint) item.append(el("span", { class: "hint", text: "hint: " + problem.hint }));
  return item;
}

async function check() {
  const seq = ++state.checkSeq;
  const provider = $("plan-provider").value;
  let result;
  try {
    result = await api("/check" + (provider ? `?provider=${encodeURIComponent(provider)}` : ""), texts());
  } catch (error) {
    result = { ok: false, problems: [{ message: error.message }], warnings: [] };
  }
  if (seq !== state.checkSeq) return; // a newer check is on its way
  const badge = $("check-state");
  badge.className = "badge " + (result.ok ? "ok" : "bad");
  badge.textContent = result.ok ? "valid" : `${result.problems.length} problem(s)`;
  const list = $("problems");
  list.replaceChildren(
    ...result.problems.map((p) => problemItem(p)),
    ...result.warnings.map((w) => problemItem({ ...w, message: "warning: " + w.message }, "warning")),
  );
  drawDiagram();
  if (result.ok) {
    showPlan(result.plan, result.mode);
    showPrompts(result.prompts);
  } else {
    $("plan").replaceChildren();
    $("prompts").replaceChildren(el("p", { class: "dim", text: "Fix the problems to see the prompts and the plan." }));
  }
}

async function drawDiagram() {
  const seq = ++state.diagramSeq;
  const box = $("mermaid");
  if (!window.mermaid) { box.textContent = "(mermaid did not load)"; return; }
  try {
    const { svg } = await window.mermaid.render(`er${seq}`, $("diagram").value);
    if (seq === state.diagramSeq) box.innerHTML = svg; // mermaid's own SVG (securityLevel strict)
  } catch (error) {
    if (seq === state.diagramSeq) box.replaceChildren(el("span", { class: "dim", text: "diagram: " + error.message }));
    document.querySelectorAll("body > [id^='der']").forEach((n) => n.remove());
  }
}

function showPlan(plan, mode) {
  const cost = plan.cost_low == null ? "unknown (no price for this model)" :
    `$${plan.cost_low.toFixed(4)} – $${plan.cost_high.toFixed(4)}`;
  const rows = [
    ["provider / model", `${plan.provider} ${plan.model || ""} (mode ${mode})`],
    ["seed conversations (exact)", plan.seed_conversations],
    ["seed requests", plan.seed_calls + (plan.seed_calls_exact ? "" : " at least")],
    ["derivations (at most)", plan.derivation_conversations_max],
    ["derivation requests (at most)", plan.derivation_calls_max],
    ["with every retry (at most)", plan.calls_max],
    ["tokens per request", `~${plan.prompt_tokens_per_call} in, ${plan.completion_tokens_low}–${plan.completion_tokens_high} out`],
    ["estimated cost", cost],
  ];
  $("plan").replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: String(v) }))));
}

function showPrompts(prompts) {
  $("prompts").replaceChildren(...prompts.map((p) => {
    const box = el("div", { class: "prompt box" }, el("h3", { text: p.title }));
    for (const m of p.messages) box.append(el("div", { class: "role", text: m.role }), el("pre", { text: m.content }));
    return box;
  }));
}

async function save() {
  try {
    await api("/save", texts());
    $("saved").textContent = "saved at " + new Date().toLocaleTimeString();
  } catch (error) {
    $("saved").textContent = "not saved: " + error.message;
  }
}

// --- run ---------------------------------------------------------------------------------------

function runBody() {
  const body = {};
  for (const input of $("run-form").elements) if (input.name && input.value !== "") body[input.name] = input.value;
  return body;
}

async function startRun(event) {
  if (event) event.preventDefault();
  try {
    await api("/run/start", runBody());
    $("run-state").textContent = "starting";
  } catch (error) {
    $("run-state").textContent = "not started: " + error.message;
  }
}

async function resumeRun(where = "data-count") {
  try {
    await api("/run/resume", {});
    $(where).textContent = "the last run resumes as it was started…";
  } catch (error) {
    $(where).textContent = "not resumed: " + error.message + (error.data && error.data.hint ? ` (${error.data.hint})` : "");
  }
}

function watchRun() {
  if (state.events) state.events.close();
  state.events = new EventSource(`/api/folders/${state.folder}/run/events`);
  state.events.addEventListener("status", (event) => showRun(JSON.parse(event.data)));
}

function showRun(run) {
  const s = run.status;
  let label = run.running ? "running" : s ? s.status : "no run yet";
  if (!run.running && run.returncode != null && run.returncode !== 0 && s && s.status === "completed") label = "completed";
  if (!run.running && run.returncode != null && run.returncode !== 0 && (!s || s.status !== "completed")) {
    label = (s ? s.status : "failed") + ` (exit code ${run.returncode})`;
  }
  $("run-state").textContent = label;
  $("run-state").dataset.state = run.running ? "running" : s ? s.status : "none";
  $("stop").disabled = !run.running;
  $("log").textContent = run.log.join("\n");
  if (!s) { $("counts").replaceChildren(); return; }
  const seeds = s.seeds, ders = s.derivations;
  const planned = seeds.requested + ders.planned, done = planned - seeds.left - ders.left;
  $("progress").max = Math.max(planned, 1);
  $("progress").value = done;
  const row = (cells, tag = "td") => el("tr", {}, ...cells.map((c) => el(tag, { text: String(c) })));
  $("counts").replaceChildren(
    row(["", "planned", "accepted", "rejected", "left"], "th"),
    row(["seeds", seeds.requested, seeds.accepted, seeds.rejected, seeds.left]),
    row(["derivations", ders.planned, ders.accepted, ders.rejected, ders.left]),
  );
  const reasons = Object.entries(s.rejected_by_reason);
  $("reasons").replaceChildren(...(reasons.length ? reasons.map(([r, n]) => el("li", { text: `${r}: ${n}` }))
    : [el("li", { class: "dim", text: "none" })]));
  const cost = `$${Number(s.cost_usd).toFixed(4)}` + (s.cost_complete ? "" : " (some models unpriced)");
  $("usage").textContent = `tokens: ${s.usage.prompt_tokens || 0} prompt + ${s.usage.completion_tokens || 0} completion;` +
    ` cost ${cost}; dataset: ${s.dataset_records == null ? "not exported yet" : s.dataset_records + " records"}`;
  if (state.wasRunning && !run.running && location.hash === "#data") {
    loadRecords().then(() => {
      $("data-count").textContent += ` · run ${s.status}, dataset: ${s.dataset_records} records`;
    });
  }
  state.wasRunning = run.running;
}

// --- data --------------------------------------------------------------------------------------

function fillFacet(id, values) {
  const select = $(id), current = select.value;
  const first = select.options[0];
  select.replaceChildren(first, ...values.map((v) => el("option", { value: v, text: v })));
  select.value = values.includes(current) ? current : "";
}

async function loadRecords() {
  const params = new URLSearchParams();
  for (const key of ["direction", "kind", "reason", "decision", "q"]) {
    const value = $(`f-${key}`).value;
    if (value) params.set(key, value);
  }
  let data;
  try { data = await api("/records?" + params); } catch (error) { $("data-count").textContent = error.message; return; }
  fillFacet("f-direction", data.facets.direction);
  fillFacet("f-kind", data.facets.kind);
  fillFacet("f-reason", data.facets.reason);
  $("data-count").textContent = `${data.total} record(s)` + (data.total > data.records.length ? `, first ${data.records.length} shown` : "");
  state.records = data.records;
  drawTree();
}

function drawTree() {
  const byId = new Map(state.records.map((r) => [r.id, r]));
  const children = new Map();
  const roots = [];
  for (const r of state.records) {
    if (r.parent_id && byId.has(r.parent_id) && r.reason == null) {
      if (!children.has(r.parent_id)) children.set(r.parent_id, []);
      children.get(r.parent_id).push(r);
    } else roots.push(r);
  }
  const item = (r) => {
    const cls = ["rec", r.reason ? "rejected" : "accepted", r.decision || ""].join(" ");
    const line = el("div", { class: cls, "data-id": r.id },
      el("span", { class: "tag kind", text: r.kind }), el("span", { class: "tag", text: r.direction }));
    if (r.prefix_turns) line.append(el("span", { class: "tag", text: `prefix ${r.prefix_turns}` }));
    if (r.reason) line.append(el("span", { class: "tag reason", text: r.reason }));
    if (r.decision) line.append(el("span", { class: "tag", text: r.decision }));
    line.append(r.preview);
    line.addEventListener("click", () => openRecord(r.id));
    const node = el("li", {}, line);
    const kids = children.get(r.id);
    if (kids) node.append(el("ul", {}, ...kids.map(item)));
    return node;
  };
  $("tree").replaceChildren(...roots.map(item));
  if (state.selected) document.querySelector(`.rec[data-id="${CSS.escape(state.selected)}"]`)?.classList.add("selected");
}

async function openRecord(id) {
  state.selected = id;
  document.querySelectorAll(".rec.selected").forEach((n) => n.classList.remove("selected"));
  document.querySelector(`.rec[data-id="${CSS.escape(id)}"]`)?.classList.add("selected");
  const r = await api(`/records/${encodeURIComponent(id)}`);
  const box = $("detail");
  box.className = "box";
  const facts = `${r.kind} · direction ${r.direction}` + (r.parent_id ? ` · from ${r.parent_id}, prefix ${r.prefix_turns} turn(s)` : "") +
    (r.persona ? ` · persona ${r.persona}` : "");
  const keep = el("button", { id: "keep", type: "button", text: "Keep" });
  const drop = el("button", { id: "drop", type: "button", text: "Drop" });
  keep.addEventListener("click", () => decide(id, "keep"));
  drop.addEventListener("click", () => decide(id, "drop"));
  const head = el("div", { class: "bar" }, el("strong", { text: id }), keep, drop,
    el("span", { id: "decision", class: "dim", text: r.decision ? `review: ${r.decision}` : "not reviewed" }));
  const body = [el("p", { class: "dim", text: facts })];
  if (r.reason) {
    body.push(el("p", { text: `rejected: ${r.reason}` + (r.detail ? ` — ${r.detail}` : "") }), el("pre", { text: r.raw }));
  } else {
    for (const m of r.messages) body.push(el("div", { class: `msg ${m.role}`, text: m.content }));
  }
  box.replaceChildren(head, ...body);
}

async function decide(id, decision) {
  try {
    await api("/review", { id, decision });
    $("decision").textContent = `review: ${decision}`;
  } catch (error) {
    $("decision").textContent = "not saved: " + error.message;
  }
  loadRecords();
}

async function openReport() {
  $("report").disabled = true;
  $("report").textContent = "Building report…";
  try {
    const { url } = await api("/report", {});
    window.open(url, "_blank", "noopener");
  } catch (error) {
    $("data-count").textContent = "report: " + error.message;
  } finally {
    $("report").disabled = false;
    $("report").textContent = "Open report";
  }
}

// --- start -------------------------------------------------------------------------------------

async function main() {
  if (window.mermaid) window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
  const folders = await (await fetch("/api/folders")).json();
  $("folder").replaceChildren(...folders.map((f) => el("option", { value: f.index, text: f.name })));
  $("folder").addEventListener("change", () => openFolder(Number($("folder").value)));
  $("setup").addEventListener("input", scheduleCheck);
  $("diagram").addEventListener("input", scheduleCheck);
  $("plan-provider").addEventListener("change", check);
  $("save").addEventListener("click", save);
  $("run-form").addEventListener("submit", startRun);
  $("stop").addEventListener("click", () => api("/run/stop", {}));
  for (const key of ["direction", "kind", "reason", "decision"]) $(`f-${key}`).addEventListener("change", loadRecords);
  $("f-q").addEventListener("input", () => { clearTimeout(state.qTimer); state.qTimer = setTimeout(loadRecords, 250); });
  $("reexport").addEventListener("click", () => resumeRun("data-count"));
  $("resume").addEventListener("click", () => resumeRun("run-state"));
  $("report").addEventListener("click", openReport);
  window.addEventListener("hashchange", showPage);
  showPage();
  if (folders.length) await openFolder(0);
}

main();
