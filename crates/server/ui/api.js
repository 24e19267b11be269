// The UI's client of Kaiyuan's HTTP API: JSON calls with a bearer key, the chat stream
// (POST /v1/chat/completions with `stream: true`, read with fetch + a stream reader since
// EventSource cannot POST; cancelled with an AbortSignal), and API errors turned into
// sentences a person can act on (401, 403, 404, 413, 429 with Retry-After, context too long).

/** An API failure with a readable message. */
export class ApiFailure extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function headers(key) {
  const h = { "Content-Type": "application/json" };
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

/** The readable message for a failed response (status, body and Retry-After). */
export function describeError(status, body, retryAfter) {
  const e = (body && body.error) || {};
  const detail = typeof e.message === "string" ? e.message : "";
  const code = e.code || e.type || "";
  if (status === 401) {
    return "The server refused the API key (401). Set a valid key in Settings.";
  }
  if (status === 403) return `This key may not do that (403): ${detail}`;
  if (status === 404) {
    if (/model/i.test(detail)) return `Model not found (404): ${detail}`;
    return `Not found (404): ${detail}`;
  }
  if (status === 413) return "The conversation is too large for the server (413).";
  if (status === 429) {
    const wait = retryAfter ? ` Retry after ${retryAfter} s.` : "";
    if (code === "insufficient_quota") return `The key's budget is spent (429).${wait} ${detail}`;
    return `Too many requests (429).${wait} ${detail}`.trim();
  }
  if (/context/i.test(code) || /context|too long|exceeds/i.test(detail)) {
    return `The conversation is too long for the model's context: ${detail} Start a new chat or shorten it.`;
  }
  if (status >= 500) return `The server failed (${status}): ${detail || "no details"}`;
  return `Request failed (${status}): ${detail || "no details"}`;
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const message = describeError(response.status, body, response.headers.get("Retry-After"));
  return new ApiFailure(message, response.status);
}

/** GET or POST JSON; resolves to the parsed body, rejects with an ApiFailure. */
export async function callJson(method, path, key, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(key),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiFailure(`Cannot reach the server: ${err.message}`, 0);
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

/**
 * Streams a chat completion. `onChunk(json)` gets each SSE `data:` object in order; resolves
 * when `[DONE]` arrives or the stream ends; rejects with an ApiFailure (HTTP error, or an
 * error event inside the stream) or an AbortError when `signal` fires.
 */
export async function streamChat(body, key, signal, onChunk) {
  let response;
  try {
    response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(key),
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiFailure(`Cannot reach the server: ${err.message}`, 0);
  }
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) {
        throw new ApiFailure(describeError(chunk.error.status || 500, chunk, null), 500);
      }
      onChunk(chunk);
    }
  }
}
