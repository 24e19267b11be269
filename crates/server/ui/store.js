// What the chat page keeps in the browser's localStorage: the settings (API key, sampling,
// thinking, JSON mode, theme) and the conversations (messages with their reasoning, tool
// calls and per-answer stats), newest first. Nothing here leaves the browser except through
// the requests the user sends.

const SETTINGS = "kaiyuan.settings";
const CONVERSATIONS = "kaiyuan.conversations";

export const DEFAULT_SETTINGS = {
  apiKey: "",
  model: "",
  system: "",
  temperature: 0.7,
  topP: 1,
  maxTokens: 512,
  thinking: true,
  jsonMode: false,
  extra: "",
  theme: "auto",
};

function read(name, fallback) {
  try {
    const text = localStorage.getItem(name);
    return text ? JSON.parse(text) : fallback;
  } catch {
    return fallback;
  }
}

function write(name, value) {
  try {
    localStorage.setItem(name, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the page still works for this visit.
  }
}

export function loadSettings() {
  return { ...DEFAULT_SETTINGS, ...read(SETTINGS, {}) };
}

export function saveSettings(settings) {
  write(SETTINGS, settings);
}

export function loadConversations() {
  const list = read(CONVERSATIONS, []);
  return Array.isArray(list) ? list : [];
}

export function saveConversations(list) {
  write(CONVERSATIONS, list.slice(0, 200));
}

export function newConversation() {
  const id = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return { id, title: "New chat", updated: Date.now(), messages: [] };
}

/** A title from the first user message. */
export function titleOf(conversation) {
  const first = conversation.messages.find((m) => m.role === "user");
  if (!first) return "New chat";
  const text = first.content.replace(/\s+/g, " ").trim();
  return text.length > 48 ? `${text.slice(0, 47)}…` : text || "New chat";
}
