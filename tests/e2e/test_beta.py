"""DeepSeek's beta surface: chat prefix completion (`"prefix": true` on the last assistant
message, also under DeepSeek's /beta base URL) and FIM (`suffix` on completions), which the
test models cannot do (no FIM tokens): a clear 400."""

import openai
import pytest

from kaiyuan_e2e import error_of

SMOL = "SmolLM2-135M-Instruct.Q4_1"
QUESTION = {"role": "user", "content": "Write a Python function that adds two numbers."}


def beta_client(server):
    return openai.OpenAI(base_url=server.url + "/beta", api_key="unused", max_retries=0)


@pytest.mark.parametrize("base", ["/v1", "/beta"])
def test_prefix_completion_continues_the_assistant_message(server, base):
    client = openai.OpenAI(base_url=server.url + base, api_key="unused", max_retries=0)
    prefix = "```python\ndef add("
    r = client.chat.completions.create(
        model=SMOL, max_tokens=20, temperature=0,
        messages=[QUESTION, {"role": "assistant", "content": prefix, "prefix": True}])
    text = r.choices[0].message.content
    assert not text.startswith(prefix), "the response holds only the continuation"
    # The same prompt as the conversation with the prefix as the start of the reply: its
    # greedy continuation equals the answer's after the prefix (checked through /v1/completions
    # on the raw ChatML the template renders).
    raw = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
           "Face<|im_end|>\n<|im_start|>user\n" + QUESTION["content"] + "<|im_end|>\n"
           "<|im_start|>assistant\n" + prefix)
    plain = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    c = plain.completions.create(model=SMOL, prompt=raw, max_tokens=20, temperature=0)
    assert c.choices[0].text == text
    assert r.usage.prompt_tokens == c.usage.prompt_tokens


def test_prefix_only_on_the_last_assistant_message(server):
    body = {"model": SMOL, "max_tokens": 5, "messages": [
        QUESTION, {"role": "assistant", "content": "x", "prefix": True}, QUESTION]}
    status, _, data = server.request("POST", "/v1/chat/completions", body)
    assert status == 400
    assert error_of(data)["param"] == "messages[1].prefix"


@pytest.mark.parametrize("path", ["/v1/completions", "/beta/completions"])
def test_fim_without_fim_tokens_is_a_clear_400(server, path):
    body = {"model": SMOL, "prompt": "def add(a, b):\n    return ", "suffix": "\n", "max_tokens": 5}
    status, _, data = server.request("POST", path, body)
    assert status == 400
    err = error_of(data)
    assert err["param"] == "suffix" and "FIM tokens" in err["message"], err
