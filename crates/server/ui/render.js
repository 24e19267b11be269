// The chat page's DOM for one message: a user bubble (with Edit), or an assistant answer
// with its reasoning in a collapsible block (open while it streams), its tool calls as
// cards, its Markdown content (through markdown.js: escaped first), its error, and its
// stats line (time to first token, tokens/s, prompt / cached / completion tokens, cost
// when the key is metered). Text
// from the model only ever reaches the page via textContent or renderMarkdown.

import { renderMarkdown } from "./markdown.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The stats line of an answer, e.g. "TTFT 0.21 s · 35.2 tok/s · prompt 20 (cached 0) · completion 64". */
export function statsText(stats) {
  if (!stats) return "";
  const parts = [];
  if (stats.ttft !== undefined) parts.push(`TTFT ${(stats.ttft / 1000).toFixed(2)} s`);
  if (stats.tps !== undefined) parts.push(`${stats.tps.toFixed(1)} tok/s`);
  const u = stats.usage;
  if (u) {
    const cached = (u.prompt_tokens_details && u.prompt_tokens_details.cached_tokens) || 0;
    parts.push(`prompt ${u.prompt_tokens} (cached ${cached})`);
    parts.push(`completion ${u.completion_tokens}`);
    const reasoning = u.completion_tokens_details && u.completion_tokens_details.reasoning_tokens;
    if (reasoning) parts.push(`reasoning ${reasoning}`);
  }
  if (typeof stats.cost === "number") parts.push(`cost $${stats.cost.toFixed(6)}`);
  if (stats.finish) parts.push(stats.finish);
  return parts.join(" · ");
}

function toolCard(call) {
  const card = el("div", "tool-card");
  const fn = call.function || {};
  card.append(el("div", "tool-name", `Tool call: ${fn.name || "?"}`));
  let args = fn.arguments || "";
  try {
    args = JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    // Still streaming or not JSON: shown as it is.
  }
  const pre = el("pre");
  pre.append(el("code", "", args));
  card.append(pre);
  return card;
}

/**
 * Builds (or rebuilds, into `node`) the element of message `m` at `index`. `actions` holds
 * the callbacks: edit(index), regenerate(index).
 */
export function renderMessage(m, index, actions, node) {
  const box = node || el("article");
  box.replaceChildren();
  box.className = `msg ${m.role}`;
  box.dataset.index = String(index);
  if (m.role === "user") {
    box.append(el("div", "bubble", m.content));
    const bar = el("div", "msg-actions");
    const edit = el("button", "link", "Edit");
    edit.type = "button";
    edit.addEventListener("click", () => actions.edit(index));
    bar.append(edit);
    box.append(bar);
    return box;
  }
  if (m.reasoning) {
    const details = el("details", "reasoning");
    details.open = Boolean(m.streaming && !m.content);
    const summary = el("summary", "", m.streaming && !m.content ? "Thinking…" : "Reasoning");
    details.append(summary, el("div", "reasoning-text", m.reasoning));
    box.append(details);
  }
  for (const call of m.tool_calls || []) box.append(toolCard(call));
  const content = el("div", "content");
  content.innerHTML = renderMarkdown(m.content || "");
  if (m.streaming && !m.content && !m.reasoning) content.append(el("span", "cursor", "…"));
  box.append(content);
  if (m.error) box.append(el("div", "error", m.error));
  const foot = el("div", "msg-actions");
  foot.append(el("span", "stats", statsText(m.stats)));
  if (!m.streaming) {
    const again = el("button", "link", "Regenerate");
    again.type = "button";
    again.addEventListener("click", () => actions.regenerate(index));
    foot.append(again);
  }
  box.append(foot);
  return box;
}
