// The chat page's controller: settings form, model picker (GET /v1/models), conversation
// list (store.js), sending a turn and streaming its answer (api.js) into the message list
// (render.js), Stop (AbortController), regenerate, edit-and-resend, light/dark theme, and
// readable errors in place of a blank page.

import { ApiFailure, callJson, streamChat } from "./api.js";
import { renderMessage } from "./render.js";
import * as store from "./store.js";

const $ = (id) => document.getElementById(id);
const settings = store.loadSettings();
let conversations = store.loadConversations();
let current = conversations[0] || store.newConversation();
let controller = null; // AbortController of the running request
let paintQueued = false;
let serial = 0;
const unmeteredKeys = new Set();
const uid = () => `m${Date.now().toString(36)}${(serial++).toString(36)}`;

const actions = { edit: editFrom, regenerate: regenerateAt };

// ---- theme ----
function applyTheme() {
  const root = document.documentElement;
  if (settings.theme === "auto") delete root.dataset.theme;
  else root.dataset.theme = settings.theme;
  $("theme").textContent = `Theme: ${settings.theme}`;
}

// ---- settings ----
const FIELDS = [
  ["api-key", "apiKey", "value"],
  ["system", "system", "value"],
  ["temperature", "temperature", "number"],
  ["top-p", "topP", "number"],
  ["max-tokens", "maxTokens", "number"],
  ["thinking", "thinking", "checked"],
  ["json-mode", "jsonMode", "checked"],
  ["extra", "extra", "value"],
];

function bindSettings() {
  for (const [id, key, kind] of FIELDS) {
    const input = $(id);
    if (kind === "checked") input.checked = Boolean(settings[key]);
    else input.value = settings[key] ?? "";
    input.addEventListener("change", () => {
      if (kind === "checked") settings[key] = input.checked;
      else if (kind === "number") settings[key] = input.value === "" ? "" : Number(input.value);
      else settings[key] = input.value;
      store.saveSettings(settings);
      if (key === "apiKey") loadModels();
      if (key === "extra") extraFields();
    });
  }
}

/** The extra request fields, or null (and a message) when they are not a JSON object. */
function extraFields() {
  const text = settings.extra.trim();
  const error = $("settings-error");
  error.hidden = true;
  if (!text) return {};
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // fall through
  }
  error.textContent = "Extra request fields must be a JSON object, e.g. {\"top_k\": 40}.";
  error.hidden = false;
  return null;
}

// ---- notices and models ----
function notice(text) {
  const box = $("notice");
  box.textContent = text || "";
  box.hidden = !text;
}

async function loadModels() {
  const select = $("model");
  try {
    const list = await callJson("GET", "/v1/models", settings.apiKey);
    select.replaceChildren();
    for (const m of list.data || []) {
      const option = document.createElement("option");
      option.value = m.id;
      // A configured model that is not loaded yet loads on its first request.
      option.textContent = m.loaded === false ? `${m.id} (loads on first use)` : m.id;
      select.append(option);
    }
    const ids = (list.data || []).map((m) => m.id);
    if (ids.includes(settings.model)) select.value = settings.model;
    else settings.model = ids[0] || "";
    notice("");
  } catch (err) {
    notice(err.message);
  }
}

// ---- conversations ----
function persist() {
  current.updated = Date.now();
  current.title = store.titleOf(current);
  conversations = [current, ...conversations.filter((c) => c.id !== current.id)];
  conversations = conversations.filter((c) => c.messages.length || c.id === current.id);
  store.saveConversations(conversations);
  paintList();
}

function paintList() {
  const nav = $("conversations");
  nav.replaceChildren();
  for (const c of conversations) {
    const row = document.createElement("div");
    row.className = c.id === current.id ? "conv active" : "conv";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "conv-open";
    open.textContent = c.title;
    open.addEventListener("click", () => switchTo(c.id));
    const del = document.createElement("button");
    del.type = "button";
    del.className = "conv-del";
    del.textContent = "×";
    del.setAttribute("aria-label", `Delete ${c.title}`);
    del.addEventListener("click", () => remove(c.id));
    row.append(open, del);
    nav.append(row);
  }
}

function switchTo(id) {
  if (controller) return;
  current = conversations.find((c) => c.id === id) || current;
  document.body.classList.remove("menu-open");
  paintList();
  paint();
}

function remove(id) {
  if (controller && id === current.id) return;
  conversations = conversations.filter((c) => c.id !== id);
  store.saveConversations(conversations);
  if (id === current.id) current = conversations[0] || store.newConversation();
  paintList();
  paint();
}

// ---- messages ----
function paint() {
  const box = $("messages");
  const nodes = box.querySelectorAll("article.msg");
  current.messages.forEach((m, i) => {
    // Only messages that changed are rebuilt (so an opened reasoning block stays open).
    const sig = signature(m, i);
    if (nodes[i] && nodes[i].dataset.sig === sig) return;
    const node = nodes[i] ? renderMessage(m, i, actions, nodes[i]) : renderMessage(m, i, actions);
    node.dataset.sig = sig;
    if (!nodes[i]) box.append(node);
  });
  for (let i = current.messages.length; i < nodes.length; i++) nodes[i].remove();
  $("empty").hidden = current.messages.length > 0;
  box.scrollTop = box.scrollHeight;
}

function signature(m, i) {
  const calls = m.tool_calls ? JSON.stringify(m.tool_calls).length : 0;
  return [current.id, i, m.id, m.role, (m.content || "").length, (m.reasoning || "").length, calls,
    m.streaming ? 1 : 0, m.error || "", JSON.stringify(m.stats || {})].join("|");
}

function paintSoon() {
  if (paintQueued) return;
  paintQueued = true;
  requestAnimationFrame(() => {
    paintQueued = false;
    paint();
  });
}

function requestBody() {
  const extra = extraFields();
  if (extra === null) return null;
  const messages = [];
  if (settings.system.trim()) messages.push({ role: "system", content: settings.system });
  for (const m of current.messages) {
    if (m.role === "assistant" && m.error && !m.content) continue;
    messages.push({ role: m.role, content: m.content || "" });
  }
  const body = { model: $("model").value || undefined, messages };
  if (settings.temperature !== "") body.temperature = Number(settings.temperature);
  if (settings.topP !== "") body.top_p = Number(settings.topP);
  if (settings.maxTokens !== "") body.max_tokens = Number(settings.maxTokens);
  body.thinking = { type: settings.thinking ? "enabled" : "disabled" };
  if (settings.jsonMode) body.response_format = { type: "json_object" };
  return { ...body, ...extra };
}

/** Streams an answer to the conversation as it stands (its last message is the user's). */
async function answer() {
  const body = requestBody();
  if (!body) return;
  const reply = { id: uid(), role: "assistant", content: "", reasoning: "", streaming: true, stats: {} };
  current.messages.push(reply);
  persist();
  paint();
  controller = new AbortController();
  setBusy(true);
  const started = performance.now();
  let first = null;
  let pieces = 0;
  let responseId = null;
  try {
    await streamChat(body, settings.apiKey, controller.signal, (chunk) => {
      if (chunk.usage) reply.stats.usage = chunk.usage;
      if (chunk.id) responseId = chunk.id;
      const choice = (chunk.choices || [])[0];
      if (!choice) return;
      const d = choice.delta || {};
      if (d.content || d.reasoning_content || d.tool_calls) {
        if (first === null) {
          first = performance.now();
          reply.stats.ttft = first - started;
        }
        pieces++;
      }
      if (d.reasoning_content) reply.reasoning += d.reasoning_content;
      if (d.content) reply.content += d.content;
      for (const t of d.tool_calls || []) {
        reply.tool_calls = reply.tool_calls || [];
        const slot = (reply.tool_calls[t.index || 0] ||= { function: { name: "", arguments: "" } });
        if (t.id) slot.id = t.id;
        if (t.function && t.function.name) slot.function.name += t.function.name;
        if (t.function && t.function.arguments) slot.function.arguments += t.function.arguments;
      }
      if (choice.finish_reason) reply.stats.finish = choice.finish_reason;
      if (first !== null) {
        const secs = (performance.now() - first) / 1000;
        if (secs > 0) reply.stats.tps = pieces / secs;
      }
      paintSoon();
    });
  } catch (err) {
    if (err.name === "AbortError") reply.stats.finish = "stopped";
    else reply.error = err instanceof ApiFailure ? err.message : `Error: ${err.message}`;
  } finally {
    const u = reply.stats.usage;
    if (u && first !== null) {
      const secs = (performance.now() - first) / 1000;
      if (secs > 0 && u.completion_tokens > 1) reply.stats.tps = (u.completion_tokens - 1) / secs;
    }
    reply.streaming = false;
    controller = null;
    setBusy(false);
    persist();
    paint();
  }
  if (responseId && reply.stats.usage) addCost(reply, responseId);
}

/** With an issued (metered) key: the answer's cost from the key's own usage records. */
async function addCost(reply, responseId) {
  if (unmeteredKeys.has(settings.apiKey)) return;
  try {
    const usage = await callJson("GET", "/v1/usage?limit=50", settings.apiKey);
    const record = (usage.data || []).find((r) => r.id === responseId);
    if (!record) return;
    reply.stats.cost = record.cost;
    persist();
    paint();
  } catch {
    // Not metered (no key, the admin key, or metering off): no cost to show, and no more
    // asking with this key.
    unmeteredKeys.add(settings.apiKey);
  }
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  document.body.classList.toggle("busy", busy);
}

function send(text) {
  if (controller || !text.trim()) return;
  current.messages.push({ id: uid(), role: "user", content: text });
  $("input").value = "";
  answer();
}

function editFrom(index) {
  if (controller) return;
  const m = current.messages[index];
  current.messages = current.messages.slice(0, index);
  $("input").value = m.content;
  $("input").focus();
  persist();
  paint();
}

function regenerateAt(index) {
  if (controller) return;
  current.messages = current.messages.slice(0, index);
  paint();
  answer();
}

// ---- wiring ----
function start() {
  applyTheme();
  bindSettings();
  $("model").addEventListener("change", () => {
    settings.model = $("model").value;
    store.saveSettings(settings);
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    send($("input").value);
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send($("input").value);
    }
  });
  $("stop").addEventListener("click", () => controller && controller.abort());
  $("new-chat").addEventListener("click", () => {
    if (controller) return;
    current = store.newConversation();
    document.body.classList.remove("menu-open");
    persist();
    paint();
  });
  $("settings-toggle").addEventListener("click", () => {
    $("settings").hidden = !$("settings").hidden;
  });
  $("menu").addEventListener("click", (e) => {
    e.stopPropagation();
    document.body.classList.toggle("menu-open");
  });
  // At phone width the list is a drawer: a tap beside it closes it.
  document.querySelector(".main").addEventListener("click", () => {
    document.body.classList.remove("menu-open");
  });
  $("theme").addEventListener("click", () => {
    const order = ["auto", "light", "dark"];
    settings.theme = order[(order.indexOf(settings.theme) + 1) % order.length];
    store.saveSettings(settings);
    applyTheme();
  });
  paintList();
  paint();
  loadModels();
}

start();
