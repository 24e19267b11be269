// Unit tests of the web UI's error messages (crates/server/ui/api.js: describeError), run
// with Node's own test runner: every API failure a user can meet reads as a sentence.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeError } from "../../crates/server/ui/api.js";

const body = (message, code) => ({ error: { message, type: "invalid_request_error", code } });

test("401 says to set a valid key", () => {
  assert.match(describeError(401, body("invalid API key"), null), /refused the API key \(401\).*Settings/);
});

test("404 for a model names the model error", () => {
  assert.match(describeError(404, body("the model `x` does not exist", "model_not_found"), null), /^Model not found \(404\): the model `x`/);
});

test("429 carries Retry-After, and a spent budget says so", () => {
  assert.equal(describeError(429, body("rpm reached", "rate_limit_exceeded"), "7"), "Too many requests (429). Retry after 7 s. rpm reached");
  assert.match(describeError(429, body("budget", "insufficient_quota"), null), /^The key's budget is spent \(429\)/);
});

test("a context that is too long is named as such", () => {
  const msg = "the prompt (10 tokens) plus max_tokens (100000) needs 100010 positions, but the context holds 4096";
  assert.match(describeError(400, body(msg), null), /^The conversation is too long for the model's context: .*holds 4096/);
});

test("other failures keep their status and message; a body that is not JSON still reads", () => {
  assert.equal(describeError(400, body("temperature must be between 0 and 2"), null), "Request failed (400): temperature must be between 0 and 2");
  assert.equal(describeError(502, null, null), "The server failed (502): no details");
});
