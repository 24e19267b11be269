// The admin page's controller: asks for the admin key (kept in sessionStorage, so it is
// gone when the tab closes), lists keys with spend against budget, creates a key (budget,
// period, limits, models; the secret shown once), revokes one, and shows usage per day,
// key and model as a table and a bar chart of cost (or tokens) per day, and the configured
// models with their state and Load / Unload buttons. It uses the admin API (/admin/keys,
// /admin/usage, /admin/models/{id}/load|unload) and GET /v1/models.

import { callJson } from "./api.js";

const $ = (id) => document.getElementById(id);
const KEY = "kaiyuan.admin-key";
let adminKey = sessionStorage.getItem(KEY) || "";

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function head(table, names) {
  const tr = document.createElement("tr");
  for (const n of names) {
    const th = document.createElement("th");
    th.textContent = n.replace(/^#/, "");
    if (n.startsWith("#")) th.className = "num";
    tr.append(th);
  }
  const thead = document.createElement("thead");
  thead.append(tr);
  table.replaceChildren(thead);
  const body = document.createElement("tbody");
  table.append(body);
  return body;
}

function usd(v) {
  if (v === null || v === undefined) return "—";
  const n = Number(v);
  return `$${n.toFixed(n !== 0 && Math.abs(n) < 0.01 ? 6 : 4)}`;
}
const limit = (v) => (v === null || v === undefined ? "—" : String(v));

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

async function loadKeys() {
  const list = await callJson("GET", "/admin/keys", adminKey);
  const body = head($("keys"), ["Name", "Id", "Key", "Models", "#Spent", "#Budget", "Spend", "#RPM", "#TPM", "#Parallel", "Status", ""]);
  for (const k of list.data || []) {
    const tr = document.createElement("tr");
    if (k.revoked_at) tr.className = "revoked";
    cell(tr, k.name);
    cell(tr, k.id);
    cell(tr, k.key_hint || "");
    cell(tr, k.models ? k.models.join(", ") : "all");
    cell(tr, usd(k.spent_usd), "num");
    cell(tr, k.budget_usd == null ? "none" : `${usd(k.budget_usd)}${k.budget_period ? ` / ${k.budget_period}` : ""}`, "num");
    const meter = cell(tr, "");
    if (k.budget_usd) {
      const bar = document.createElement("span");
      bar.className = "meter";
      const fill = document.createElement("span");
      const share = (k.spent_usd + (k.reserved_usd || 0)) / k.budget_usd;
      fill.style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
      if (share >= 1) fill.className = "over";
      bar.append(fill);
      bar.title = `${(share * 100).toFixed(1)}% of the budget`;
      meter.append(bar);
    }
    cell(tr, limit(k.rpm), "num");
    cell(tr, limit(k.tpm), "num");
    cell(tr, limit(k.max_parallel), "num");
    cell(tr, k.revoked_at ? "revoked" : "active");
    const act = cell(tr, "");
    if (!k.revoked_at) {
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.className = "link";
      revoke.textContent = "Revoke";
      revoke.addEventListener("click", () => revokeKey(k));
      act.append(revoke);
    }
    body.append(tr);
  }
}

/** Usage rows grouped by (day, key, model), newest day first. */
export function groupUsage(records, names) {
  const groups = new Map();
  for (const r of records) {
    const day = new Date(r.created * 1000).toISOString().slice(0, 10);
    const id = `${day}\u0000${r.key_id}\u0000${r.model}`;
    let g = groups.get(id);
    if (!g) {
      g = { day, key: names.get(r.key_id) || r.key_id || "(unmetered)", model: r.model, requests: 0, prompt: 0, cached: 0, completion: 0, cost: 0 };
      groups.set(id, g);
    }
    g.requests++;
    g.prompt += r.prompt_tokens;
    g.cached += r.cached_tokens;
    g.completion += r.completion_tokens;
    g.cost += r.cost;
  }
  return [...groups.values()].sort((a, b) => b.day.localeCompare(a.day) || a.key.localeCompare(b.key));
}

async function loadUsage() {
  const [usage, keys] = await Promise.all([
    callJson("GET", "/admin/usage?limit=5000", adminKey),
    callJson("GET", "/admin/keys", adminKey),
  ]);
  const names = new Map((keys.data || []).map((k) => [k.id, k.name]));
  const rows = groupUsage(usage.data || [], names);
  const body = head($("usage"), ["Day", "Key", "Model", "#Requests", "#Prompt", "#Cached", "#Completion", "#Cost"]);
  for (const g of rows) {
    const tr = document.createElement("tr");
    cell(tr, g.day);
    cell(tr, g.key);
    cell(tr, g.model);
    cell(tr, String(g.requests), "num");
    cell(tr, String(g.prompt), "num");
    cell(tr, String(g.cached), "num");
    cell(tr, String(g.completion), "num");
    cell(tr, usd(g.cost), "num");
    body.append(tr);
  }
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, "No usage recorded yet.");
    td.colSpan = 8;
    body.append(tr);
  }
  chart(rows);
}

/** A bar per day: cost if anything cost money, else tokens. */
function chart(rows) {
  const box = $("chart");
  box.replaceChildren();
  const days = new Map();
  const byCost = rows.some((g) => g.cost > 0);
  for (const g of rows) {
    days.set(g.day, (days.get(g.day) || 0) + (byCost ? g.cost : g.prompt + g.completion));
  }
  const entries = [...days.entries()].sort((a, b) => a[0].localeCompare(b[0])).slice(-30);
  if (!entries.length) return;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const width = 600;
  const height = 200;
  svg.setAttribute("viewBox", `-40 0 ${width + 80} ${height}`); // room for the end labels
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", byCost ? "Cost per day" : "Tokens per day");
  const max = Math.max(...entries.map((e) => e[1])) || 1;
  const slot = width / Math.max(entries.length, 7);
  entries.forEach(([day, value], i) => {
    const h = Math.max(1, (value / max) * (height - 40));
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(i * slot + slot * 0.15));
    rect.setAttribute("y", String(height - 20 - h));
    rect.setAttribute("width", String(slot * 0.7));
    rect.setAttribute("height", String(h));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${day}: ${byCost ? usd(value) : `${value} tokens`}`;
    rect.append(title);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(i * slot + slot / 2));
    label.setAttribute("y", String(height - 5));
    label.setAttribute("text-anchor", "middle");
    label.textContent = day.slice(5);
    const amount = document.createElementNS(ns, "text");
    amount.setAttribute("x", String(i * slot + slot / 2));
    amount.setAttribute("y", String(height - 24 - h));
    amount.setAttribute("text-anchor", "middle");
    amount.textContent = byCost ? usd(value) : String(value);
    svg.append(rect, label, amount);
  });
  const caption = document.createElement("p");
  caption.className = "muted";
  caption.textContent = byCost ? "Cost per day (USD)" : "Tokens per day (prompt + completion; nothing is priced)";
  box.append(caption, svg);
}

/** The state word a model card shows: loaded, loading, or idle (loads on first request). */
export function modelState(m) {
  if (m.loaded) return m.pinned ? "loaded (pinned)" : "loaded";
  if (m.loading) return "loading…";
  return "not loaded";
}

function mib(bytes) {
  return bytes == null ? "—" : `${(bytes / (1 << 20)).toFixed(0)} MiB`;
}

async function loadModels() {
  const list = await callJson("GET", "/v1/models", adminKey);
  const body = head($("models"), ["Model", "Aliases", "State", "#Context", "#Size", "Capabilities", ""]);
  for (const m of list.data || []) {
    const tr = document.createElement("tr");
    tr.dataset.model = m.id;
    cell(tr, m.id);
    cell(tr, (m.aliases || []).join(", "));
    cell(tr, modelState(m), "state");
    cell(tr, m.context_length == null ? "—" : String(m.context_length), "num");
    cell(tr, mib(m.size_bytes), "num");
    const caps = m.capabilities;
    cell(tr, caps ? [caps.tool_format && `tools: ${caps.tool_format}`, caps.reasoning && "reasoning"].filter(Boolean).join(", ") : "—");
    const act = cell(tr, "");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    const action = m.loaded ? "unload" : "load";
    button.textContent = m.loaded ? "Unload" : "Load";
    button.disabled = Boolean(m.loading);
    button.addEventListener("click", () => modelAction(m.id, action, button));
    act.append(button);
    body.append(tr);
  }
}

async function modelAction(id, action, button) {
  button.disabled = true;
  button.textContent = action === "load" ? "Loading…" : "Unloading…";
  try {
    await callJson("POST", `/admin/models/${encodeURIComponent(id)}/${action}`, adminKey);
    notice("");
  } catch (err) {
    notice(err.message);
  }
  try {
    await loadModels();
  } catch (err) {
    notice(err.message);
  }
}

function optionalNumber(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

async function createKey(event) {
  event.preventDefault();
  const body = { name: $("k-name").value.trim() };
  const budget = optionalNumber("k-budget");
  if (budget !== undefined) body.budget_usd = budget;
  if ($("k-period").value.trim()) body.budget_period = $("k-period").value.trim();
  for (const [id, field] of [["k-rpm", "rpm"], ["k-tpm", "tpm"], ["k-parallel", "max_parallel"]]) {
    const v = optionalNumber(id);
    if (v !== undefined) body[field] = v;
  }
  const models = $("k-models").value.split(",").map((m) => m.trim()).filter(Boolean);
  if (models.length) body.models = models;
  try {
    const issued = await callJson("POST", "/admin/keys", adminKey, body);
    const box = $("new-key");
    box.replaceChildren();
    box.append("New key for ", issued.name || body.name, " (shown only now, copy it): ");
    const code = document.createElement("code");
    code.id = "new-key-secret";
    code.textContent = issued.key;
    box.append(code);
    box.hidden = false;
    $("create").reset();
    await refresh();
  } catch (err) {
    notice(err.message);
  }
}

async function revokeKey(k) {
  if (!window.confirm(`Revoke the key "${k.name}"? Requests with it fail from now on.`)) return;
  try {
    await callJson("DELETE", `/admin/keys/${encodeURIComponent(k.id)}`, adminKey);
    await refresh();
  } catch (err) {
    notice(err.message);
  }
}

async function refresh() {
  try {
    await loadKeys();
    await loadUsage();
    await loadModels();
    notice("");
    $("panel").hidden = false;
    $("login").hidden = true;
    $("logout").hidden = false;
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      sessionStorage.removeItem(KEY);
      adminKey = "";
      $("login").hidden = false;
      $("panel").hidden = true;
      notice(err.status === 401 ? "That is not the admin key (401)." : "That key is not the admin key (403).");
    } else if (err.status === 404) {
      notice("Metering is off on this server (start it with --admin-key to manage keys and usage).");
    } else {
      notice(err.message);
    }
  }
}

function applyTheme() {
  const theme = JSON.parse(localStorage.getItem("kaiyuan.settings") || "{}").theme || "auto";
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("theme").textContent = `Theme: ${theme}`;
}

function start() {
  applyTheme();
  $("theme").addEventListener("click", () => {
    const settings = JSON.parse(localStorage.getItem("kaiyuan.settings") || "{}");
    const order = ["auto", "light", "dark"];
    settings.theme = order[(order.indexOf(settings.theme || "auto") + 1) % order.length];
    localStorage.setItem("kaiyuan.settings", JSON.stringify(settings));
    applyTheme();
  });
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    adminKey = $("admin-key").value.trim();
    sessionStorage.setItem(KEY, adminKey);
    refresh();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    window.location.reload();
  });
  $("create").addEventListener("submit", createKey);
  if (adminKey) refresh();
}

start();
