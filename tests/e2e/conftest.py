"""Fixtures of the end-to-end suite: one shared server with the default model (SmolLM2) for
the tests that do not need special flags, and an OpenAI client pointed at it."""

import pytest

from kaiyuan_e2e import Server, make_client


@pytest.fixture(scope="session")
def server():
    s = Server("-t", "2")
    yield s
    code = s.terminate()
    assert code == 0, f"exit code {code}; log kept at {s.log_path}"


@pytest.fixture(scope="session")
def client(server):
    return make_client(server)

