"""Logs of the real binary: `--log-format json` writes each request as one JSON object on
one line with the request's fields, and `RUST_LOG` filters what is written."""

import json
import signal

from kaiyuan_e2e import Server

HI = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
FIELDS = {"req", "endpoint", "model", "status", "finish", "prompt", "completion", "cached",
          "duration_ms", "level", "target", "timestamp"}


def _stop(s):
    """SIGTERM; returns the whole log (the helper deletes it once the server exits 0)."""
    s.proc.send_signal(signal.SIGTERM)
    code = s.proc.wait(timeout=120)
    log = s.log()
    assert s.terminate() == 0 and code == 0, log
    return log


def _json_lines(log):
    """The log's lines, each of which must be one JSON object: the CLI's own lines
    (`listening on`, `loaded`, `ready:`, `stopped`) are log records too."""
    out = []
    for line in log.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError(f"not a JSON line ({e}): {line!r}\n{log}") from None
    return out


def test_json_log_is_one_object_per_request_with_the_fields():
    s = Server("-t", "1", "--log-format", "json")
    try:
        ids = []
        for endpoint, body in [("/v1/chat/completions", HI),
                               ("/v1/completions", {"prompt": "Once", "max_tokens": 2})]:
            status, _, raw = s.post(endpoint, body)
            assert status == 200, raw
            ids.append(json.loads(raw)["id"])
        status, _, _ = s.post("/v1/chat/completions", {**HI, "max_tokens": 0})
        assert status == 400
    finally:
        log = _stop(s)
    lines = [l for l in _json_lines(log) if l.get("target") == "kaiyuan_server::request"]
    assert [l["req"] for l in lines[:2]] == ids, lines
    assert len(lines) == 3, lines
    for line in lines:
        assert FIELDS <= line.keys(), line
        assert line["level"] == "INFO"
    assert [l["endpoint"] for l in lines] == ["chat", "completions", "chat"]
    assert [l["status"][:3] for l in lines] == ["200", "200", "400"]
    assert lines[0]["completion"] == 2 and lines[0]["finish"] == "length"
    # The start-up and the shutdown are logged as JSON too.
    messages = [l.get("message", "") for l in _json_lines(log)]
    assert any(m.startswith("kaiyuan listening on http://") for m in messages), log
    assert any(m.startswith("ready: ") for m in messages), log
    assert any("shutting down" in m for m in messages), log
    assert messages[-1] == "stopped", log


def test_rust_log_filters(monkeypatch):
    monkeypatch.setenv("RUST_LOG", "info,kaiyuan_server::request=off")
    s = Server("-t", "1")
    try:
        status, _, raw = s.post("/v1/chat/completions", HI)
        assert status == 200, raw
    finally:
        log = _stop(s)
    assert "endpoint=chat" not in log, log
    assert "shutting down" in log, log
