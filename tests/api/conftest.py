"""Fixtures of the AgentState surface tests (a module that defines its own `app` or `c` keeps its own)."""

import pytest

from agentstate_support import agentstate_app


@pytest.fixture
def app(tmp_path):
    """The whole app in-process and its clock: (client, clock)."""
    with agentstate_app(tmp_path) as pair:
        yield pair


@pytest.fixture
def c(app):
    return app[0]
