//! Fuzz target: request bodies as they arrive over HTTP, arbitrary bytes, into the parsers of
//! every generation endpoint: chat completions, completions, Anthropic messages and
//! count_tokens, plus the tool definitions / tool_choice / assistant tool_calls readers on
//! whatever the body holds under those keys. Each must accept or return an `ApiError` (a 4xx
//! that renders to a body), never panic.
#![no_main]

use kaiyuan_server::fuzzing::{
    assistant_tool_calls, chat, completion, count_tokens, messages, parse_object, tools_request,
};
use kaiyuan_server::ApiError;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check(err: ApiError) {
    let status = err.status();
    assert!(
        status.is_client_error(),
        "a bad request is a 4xx, got {status}: {err:?}"
    );
    let _ = (err.error_type(), err.code(), err.param(), err.log_status());
    let _ = serde_json::to_string(&err.body()).expect("error body serializes");
}

fuzz_target!(|data: &[u8]| {
    let body = match parse_object(data) {
        Ok(body) => body,
        Err(e) => return check(e),
    };
    if let Err(e) = chat(&body) {
        check(e);
    }
    if let Err(e) = completion(&body) {
        check(e);
    }
    if let Err(e) = messages(&body) {
        check(e);
    }
    if let Err(e) = count_tokens(&body) {
        check(e);
    }
    if let Err(e) = tools_request(
        body.get("tools"),
        body.get("tool_choice"),
        body.get("parallel_tool_calls"),
    ) {
        check(e);
    }
    let calls = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("tool_calls"));
    for (i, c) in calls.enumerate() {
        if let Err(e) = assistant_tool_calls(i, c) {
            check(e);
        }
    }
});
