"""The web UI in a real browser: Debian's chromium (installed by scripts/install-chromium)
driven by Python Playwright against the real `kaiyuan serve` (debug build, SmolLM2 under two
names, metering on, the fixture thinking template so a reasoning block can be forced).

Checks: the streamed answer grows in the page; Stop cancels (the server's cancelled counter
rises); switching models sends the other name; reasoning shows in a collapsible block; tool calls show as cards; a
model answer with <script> and <img onerror> renders as text (no element, no dialog); a wrong
key gives a readable 401 message; the admin page creates a key, the chat page uses it, the
admin page shows its usage row; regenerate, edit-and-resend and the conversation list
work; the settings (JSON mode, sampling, thinking, system prompt) reach the request; a
context overflow reads as such; phone width has no horizontal scroll; `--no-ui` serves no page. With
KAIYUAN_UI_SCREENSHOTS=DIR it also saves the README's screenshots there.
"""

import json
import os
import pathlib
import tempfile
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from kaiyuan_e2e import ROOT, Server, wait_for

CHROMIUM = os.environ.get("KAIYUAN_CHROMIUM", "/usr/bin/chromium")
ADMIN = "admin-key-for-the-ui-tests-0123"
SMOL = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE = pathlib.Path(__file__).resolve().parent / "templates" / "thinking-chatml.jinja"
XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
SHOTS = os.environ.get("KAIYUAN_UI_SCREENSHOTS")
WAIT_MS = 240_000


@pytest.fixture(scope="module")
def ui_server():
    tmp = tempfile.mkdtemp(prefix="kaiyuan-ui-")
    prices = pathlib.Path(tmp) / "prices.toml"
    prices.write_text("[default]\ninput_cache_hit = 20\ninput_cache_miss = 100\noutput = 300\n")
    s = Server(
        "-t", "1", "-m", f"{SMOL}=smol-a", "-m", f"{SMOL}=smol-b",
        "--chat-template-file", str(TEMPLATE),
        "--admin-key", ADMIN, "--db", f"sqlite://{tmp}/meter.db", "--prices", str(prices),
    )
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: run scripts/install-chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def literal(text):
    """`text` as a regular expression that matches only itself."""
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}" else c for c in text)


def grammar(regex):
    """Extra request fields (the page's setting) forcing the output to match `regex`."""
    return json.dumps({"grammar": {"type": "regex", "value": regex}})


def open_chat(browser, server, key=ADMIN, width=1280, height=800, scheme="light", **settings):
    """A fresh browser context on the chat page with `settings` (store.js names) stored."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # JavaScript errors; failed requests show up as messages the tests read instead.
    page.on("console", lambda m: m.type == "error" and "Failed to load resource" not in m.text
            and errors.append(m.text))
    page.goto(server.url + "/")
    stored = {"apiKey": key, "thinking": False, "maxTokens": 24, "temperature": 0, **settings}
    page.evaluate("s => localStorage.setItem('kaiyuan.settings', JSON.stringify(s))", stored)
    page.reload()
    expect(page.locator("#model option")).not_to_have_count(0, timeout=WAIT_MS)
    page.dialogs, page.errors = dialogs, errors
    return page


def send(page, text):
    page.fill("#input", text)
    page.click("#send")


def last_answer(page):
    return page.locator("article.msg.assistant").last


def wait_done(page):
    expect(page.locator("#send")).to_be_visible(timeout=WAIT_MS)
    return last_answer(page)


def test_a_message_streams_into_the_page(browser, ui_server):
    page = open_chat(browser, ui_server, maxTokens=40)
    send(page, "Tell me about the sea.")
    content = last_answer(page).locator(".content")
    lengths = set()
    deadline = time.monotonic() + WAIT_MS / 1000
    while page.locator("#stop").is_visible() and time.monotonic() < deadline:
        lengths.add(len(content.inner_text()))
        time.sleep(0.02)
    answer = wait_done(page)
    final = answer.locator(".content").inner_text().strip()
    assert final, "no answer"
    # Streamed: the page showed a partial answer (neither empty nor whole) before the end.
    assert len({n for n in lengths if 0 < n < len(final)}) >= 1, lengths
    stats = answer.locator(".stats").inner_text()
    assert "TTFT" in stats and "tok/s" in stats and "prompt" in stats and "completion" in stats, stats
    assert page.locator("#conversations .conv").count() >= 1
    assert not page.errors, page.errors


def test_stop_cancels_the_request(browser, ui_server):
    before = ui_server.metric("kaiyuan_requests_total", outcome="cancelled")
    page = open_chat(browser, ui_server, maxTokens=2000)
    send(page, "Write a very long story about a dragon.")
    expect(last_answer(page).locator(".content")).not_to_be_empty(timeout=WAIT_MS)
    page.click("#stop")
    answer = wait_done(page)
    assert "stopped" in answer.locator(".stats").inner_text()
    wait_for(
        lambda: ui_server.metric("kaiyuan_requests_total", outcome="cancelled") > before,
        60, "the cancelled counter to rise",
    )


def test_switching_models_sends_the_other_name(browser, ui_server):
    page = open_chat(browser, ui_server)
    page.select_option("#model", "smol-b")
    with page.expect_request("**/v1/chat/completions") as request:
        send(page, "Hi")
    assert request.value.post_data_json["model"] == "smol-b"
    wait_done(page)
    page.reload()
    expect(page.locator("#model")).to_have_value("smol-b", timeout=WAIT_MS)


def test_reasoning_streams_into_a_collapsible_block(browser, ui_server):
    extra = grammar("(hmm|well), (yes|no)</think>\n\n(Paris|Rome)\\.")
    page = open_chat(browser, ui_server, thinking=True, extra=extra)
    send(page, "What is the capital of France?")
    answer = wait_done(page)
    block = answer.locator("details.reasoning")
    expect(block).to_have_count(1)
    assert block.locator("summary").inner_text() == "Reasoning"
    assert block.get_attribute("open") is None, "closed once the answer came"
    block.locator("summary").click()
    assert block.locator(".reasoning-text").inner_text().strip().startswith(("hmm", "well"))
    assert answer.locator(".content").inner_text().strip() in ("Paris.", "Rome.")


def test_settings_reach_the_request(browser, ui_server):
    page = open_chat(browser, ui_server, jsonMode=True, temperature=0.5, topP=0.9, maxTokens=48,
                     system="Answer in JSON.")
    with page.expect_request("**/v1/chat/completions") as request:
        send(page, "Give me a JSON object about a cat.")
    body = request.value.post_data_json
    assert body["response_format"] == {"type": "json_object"}
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.5, 0.9, 48)
    assert body["thinking"] == {"type": "disabled"}
    assert body["messages"][0] == {"role": "system", "content": "Answer in JSON."}
    text = wait_done(page).locator(".content").inner_text().strip()
    assert text.startswith("{"), text


def test_tool_calls_show_as_cards(browser, ui_server):
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    extra = json.dumps({"tools": [tool], "tool_choice": "required"})
    page = open_chat(browser, ui_server, extra=extra, maxTokens=60)
    send(page, "What is the weather in Paris?")
    answer = wait_done(page)
    card = answer.locator(".tool-card")
    expect(card).to_have_count(1)
    expect(card.locator(".tool-name")).to_have_text("Tool call: get_weather")
    expect(card.locator("pre")).to_contain_text('"city"')
    assert "tool_calls" in answer.locator(".stats").inner_text()


def test_model_html_renders_as_text(browser, ui_server):
    extra = grammar(literal(XSS))
    page = open_chat(browser, ui_server, extra=extra, maxTokens=64)
    send(page, "Say something.")
    answer = wait_done(page)
    assert answer.locator(".content").inner_text().strip() == XSS
    assert page.locator("#messages script, #messages img").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == [], page.dialogs


def test_wrong_key_is_a_readable_401(browser, ui_server):
    context = browser.new_context()
    page = context.new_page()
    page.goto(ui_server.url + "/")
    page.evaluate("localStorage.setItem('kaiyuan.settings', JSON.stringify({apiKey: 'wrong-key'}))")
    page.reload()
    expect(page.locator("#notice")).to_contain_text("401", timeout=WAIT_MS)
    expect(page.locator("#notice")).to_contain_text("API key")
    send(page, "Hello?")
    expect(last_answer(page).locator(".error")).to_contain_text("refused the API key (401)", timeout=WAIT_MS)


def test_context_too_long_is_a_readable_message(browser, ui_server):
    page = open_chat(browser, ui_server, maxTokens=1_000_000)
    send(page, "Hello")
    error = wait_done(page).locator(".error")
    expect(error).to_contain_text("too long for the model's context")


def test_regenerate_edit_and_conversations(browser, ui_server):
    page = open_chat(browser, ui_server)
    send(page, "First question")
    wait_done(page)
    with page.expect_request("**/v1/chat/completions") as again:
        last_answer(page).get_by_role("button", name="Regenerate").click()
    sent = again.value.post_data_json["messages"]
    assert [m["content"] for m in sent] == ["First question"], "regenerate resends up to the user turn"
    wait_done(page)
    expect(page.locator("article.msg")).to_have_count(2)
    # Edit: the text comes back into the input and the turns from it are dropped.
    page.locator("article.msg.user").get_by_role("button", name="Edit").click()
    expect(page.locator("#input")).to_have_value("First question")
    expect(page.locator("article.msg")).to_have_count(0)
    with page.expect_request("**/v1/chat/completions") as edited:
        send(page, "Edited question")
    assert [m["content"] for m in edited.value.post_data_json["messages"]] == ["Edited question"]
    wait_done(page)
    # A second conversation, then back to the first one from the list.
    page.click("#new-chat")
    expect(page.locator("article.msg")).to_have_count(0)
    send(page, "Second chat")
    wait_done(page)
    page.locator("#conversations .conv-open", has_text="Edited question").click()
    expect(page.locator("article.msg.user .bubble")).to_have_text("Edited question")
    page.reload()
    expect(page.locator("#conversations .conv-open", has_text="Second chat")).to_have_count(1)


def test_admin_creates_a_key_that_the_chat_uses(browser, ui_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    admin = context.new_page()
    admin.on("dialog", lambda d: d.accept())
    admin.goto(ui_server.url + "/admin")
    admin.fill("#admin-key", "not-the-admin-key")
    admin.click("#login button[type=submit]")
    expect(admin.locator("#notice")).to_contain_text("401", timeout=WAIT_MS)
    admin.fill("#admin-key", ADMIN)
    admin.click("#login button[type=submit]")
    expect(admin.locator("#panel")).to_be_visible(timeout=WAIT_MS)
    admin.fill("#k-name", "ui-team")
    admin.fill("#k-budget", "5")
    admin.fill("#k-rpm", "100")
    admin.click("#create button[type=submit]")
    secret = admin.locator("#new-key-secret")
    expect(secret).to_be_visible(timeout=WAIT_MS)
    key = secret.inner_text().strip()
    assert len(key) > 16
    expect(admin.locator("#keys tbody")).to_contain_text("ui-team")

    chat = open_chat(browser, ui_server, key=key)
    send(chat, "Hello from the new key")
    answer = wait_done(chat)
    assert answer.locator(".error").count() == 0
    expect(answer.locator(".stats")).to_contain_text("cost $0.0", timeout=WAIT_MS)

    admin.reload()
    expect(admin.locator("#usage tbody")).to_contain_text("ui-team", timeout=WAIT_MS)
    row = admin.locator("#usage tbody tr", has_text="ui-team").first
    assert "smol-" in row.inner_text()
    expect(admin.locator("#chart svg rect")).not_to_have_count(0)
    if SHOTS:
        for scheme in ("light", "dark"):
            admin.emulate_media(color_scheme=scheme)
            admin.screenshot(path=f"{SHOTS}/ui-admin-desktop-{scheme}.png", full_page=True)
        admin.set_viewport_size({"width": 390, "height": 844})
        admin.emulate_media(color_scheme="light")
        admin.screenshot(path=f"{SHOTS}/ui-admin-phone-light.png")
    # Revoke: the row says so and the chat page gets the 401 message.
    admin.set_viewport_size({"width": 1280, "height": 900})
    admin.locator("#keys tbody tr", has_text="ui-team").get_by_role("button", name="Revoke").click()
    expect(admin.locator("#keys tbody tr", has_text="ui-team")).to_contain_text("revoked", timeout=WAIT_MS)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_width_layout(browser, ui_server, scheme):
    page = open_chat(browser, ui_server, width=390, height=844, scheme=scheme)
    send(page, "Hi! Show me a list and some `code`.")
    wait_done(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"horizontal scroll of {overflow}px at phone width"
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    expect(page.locator("#menu")).to_be_visible()
    for part in ("#input", "#send", "#model"):
        box = page.locator(part).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (part, box)
    page.click("#menu")
    expect(page.locator("#sidebar")).to_be_in_viewport()
    page.mouse.click(370, 400)  # a tap beside the drawer closes it
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/ui-chat-phone-{scheme}.png")


@pytest.mark.skipif(not SHOTS, reason="screenshots only with KAIYUAN_UI_SCREENSHOTS")
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_desktop_screenshot(browser, ui_server, scheme):
    answer = 'Here is **one** way:\n\n```python\nprint("hi")\n```\n\n- it is `short`\n- it *works*'
    extra = grammar("(hmm|well), (yes|no), the user wants code</think>\n\n" + literal(answer))
    page = open_chat(browser, ui_server, scheme=scheme, thinking=True, extra=extra, maxTokens=80)
    send(page, "Show me a Python hello world.")
    answer = wait_done(page)
    answer.locator("details.reasoning summary").click()
    page.screenshot(path=f"{SHOTS}/ui-chat-desktop-{scheme}.png")


def test_no_ui_serves_no_page():
    s = Server("-t", "1", "--no-ui")
    try:
        for path in ("/", "/admin", "/ui/chat.js"):
            status, _, body = s.get(path)
            assert status == 404, (path, status)
            assert b'"error"' in body
        assert s.get("/health")[0] == 200
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"



def model_cards(server):
    status, _, body = server.get("/v1/models", headers={"Authorization": f"Bearer {ADMIN}"})
    assert status == 200, body
    return {m["id"]: m for m in json.loads(body)["data"]}


def test_admin_unloads_and_loads_a_model(browser, ui_server):
    """The admin page's Models table: Unload frees a model (the chat picker then says it
    loads on first use), Load brings it back; the server's /v1/models agrees each time."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    admin = context.new_page()
    admin.goto(ui_server.url + "/admin")
    admin.fill("#admin-key", ADMIN)
    admin.click("#login button[type=submit]")
    row = admin.locator("#models tbody tr[data-model='smol-b']")
    expect(row.locator(".state")).to_have_text("loaded (pinned)", timeout=WAIT_MS)
    row.get_by_role("button", name="Unload").click()
    expect(row.locator(".state")).to_have_text("not loaded", timeout=WAIT_MS)
    cards = model_cards(ui_server)
    assert cards["smol-b"]["loaded"] is False and cards["smol-a"]["loaded"] is True

    chat = open_chat(browser, ui_server)
    expect(chat.locator("#model option[value='smol-b']")).to_have_text("smol-b (loads on first use)")

    row.get_by_role("button", name="Load").click()
    expect(row.locator(".state")).to_have_text("loaded (pinned)", timeout=WAIT_MS)
    cards = model_cards(ui_server)
    assert cards["smol-b"]["loaded"] is True
    context.close()
