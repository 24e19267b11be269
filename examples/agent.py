"""An agent loop against Kaiyuan with the official `openai` client: the model asks for a local
function through tool calling, the script runs it and sends the result back, until the model
answers. Run a server first (`kaiyuan serve`), then:

    pip install openai
    python examples/agent.py "What is the weather in Paris?"

Environment: KAIYUAN_URL (default http://127.0.0.1:8080/v1), KAIYUAN_MODEL (default: the first
model the server lists), KAIYUAN_API_KEY (if the server wants one).
"""

import json
import os
import sys

import openai


def get_weather(city, unit="C"):
    """The local function the model may call (a stand-in for a real weather service)."""
    temperature = {"paris": 18, "beijing": 25, "london": 14}.get(city.strip().lower(), 20)
    if unit == "F":
        temperature = round(temperature * 9 / 5 + 32)
    return {"city": city, "temperature": temperature, "unit": unit, "sky": "clear"}


FUNCTIONS = {"get_weather": get_weather}
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["C", "F"]},
            },
            "required": ["city"],
        },
    },
}]


def main():
    question = sys.argv[1] if len(sys.argv) > 1 else "What is the weather in Paris?"
    client = openai.OpenAI(
        base_url=os.environ.get("KAIYUAN_URL", "http://127.0.0.1:8080/v1"),
        api_key=os.environ.get("KAIYUAN_API_KEY", "unused"),
    )
    model = os.environ.get("KAIYUAN_MODEL") or client.models.list().data[0].id
    messages = [{"role": "user", "content": question}]
    # Small models rarely decide to call on their own: the first turn requires a call; later
    # turns let the model choose, and the last one asks for the answer.
    for turn in range(4):
        choice = "required" if turn == 0 else ("none" if turn == 3 else "auto")
        reply = client.chat.completions.create(
            model=model, messages=messages, tools=TOOLS, tool_choice=choice,
            max_tokens=150, temperature=0,
        ).choices[0]
        message = reply.message
        if not message.tool_calls:
            print("answer:", message.content)
            return
        messages.append({"role": "assistant", "content": message.content,
                         "tool_calls": [c.model_dump() for c in message.tool_calls]})
        for call in message.tool_calls:
            args = json.loads(call.function.arguments)
            result = FUNCTIONS[call.function.name](**args)
            shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
            print(f"{call.function.name}({shown}) -> {json.dumps(result)}")
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    print("answer: (none after 4 turns)")


if __name__ == "__main__":
    main()
