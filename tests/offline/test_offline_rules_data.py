"""service_rules.json (issue 24 item 7): the service's rules as data, the installed SDK's types check it.

CI runs this on the lowest and the newest supported SDK (.ci/run runs tests/offline on anthropic 2.15 too):
whichever is installed, every top-level field and beta name its types list must be in the data, so a new SDK
that adds one fails here until the data (with a source) says so. Acceptance is shown to follow the data, not
the SDK, through real HTTP into the in-process backend.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any, get_type_hints

import httpx2
import pytest
from anthropic.types import anthropic_beta_param
from offline_helpers import MODEL, user

from claudekit.offline import OfflineBackend
from claudekit.offline._rules_data import request_fields, rules_data
from claudekit.offline._shapes import adapter

WIRE_ONLY = {"betas"}  # an SDK argument sent as the anthropic-beta header, not a body field


def sdk_fields(surface: str, beta: bool) -> set[str]:
    if beta:
        from anthropic.types.beta import message_count_tokens_params as count_mod
        from anthropic.types.beta import message_create_params as create_mod
    else:
        from anthropic.types import message_count_tokens_params as count_mod  # type: ignore[no-redef]
        from anthropic.types import message_create_params as create_mod  # type: ignore[no-redef]
    root = create_mod.MessageCreateParamsBase if surface == "messages" else count_mod.MessageCountTokensParams
    return set(get_type_hints(root)) - WIRE_ONLY


def sdk_betas() -> set[str]:
    names: set[str] = set()

    def walk(tp: Any) -> None:
        for arg in typing.get_args(tp):
            if isinstance(arg, str):
                names.add(arg)
            else:
                walk(arg)

    walk(anthropic_beta_param.AnthropicBetaParam)
    return names


@pytest.mark.parametrize("surface", ["messages", "count_tokens"])
@pytest.mark.parametrize("beta", [False, True])
def test_every_field_the_installed_sdk_lists_is_in_the_data(surface: Any, beta: bool) -> None:
    missing = sdk_fields(surface, beta) - request_fields(surface, beta)
    assert not missing, f"the installed SDK lists {sorted(missing)}: add them to service_rules.json, sourced"
    # A beta field is one the plain request refuses (the data does not list it twice).
    data = rules_data()["fields"][surface]
    assert not set(data["plain"]) & set(data["beta"])


def test_every_beta_the_installed_sdk_lists_is_known_and_every_entry_cites_sources() -> None:
    data = rules_data()
    assert not sdk_betas() - set(data["betas"]["known"])
    sources = set(data["sources"])
    assert all(isinstance(v, str) and v for v in data["sources"].values())
    entries = [
        *(v for side in data["fields"].values() for group in side.values() for v in group.values()),
        *data["betas"]["known"].values(),
        *(e["sources"] for e in data["betas"]["effects"].values()),
    ]
    assert entries and all(e and set(e) <= sources for e in entries)
    for effect in data["betas"]["effects"].values():
        assert set(effect["betas"]) <= set(data["betas"]["known"])


@pytest.fixture
def edited() -> Iterator[dict[str, Any]]:
    """The plain /v1/messages fields of the data, to edit for one test (validators rebuilt around it)."""
    plain = rules_data()["fields"]["messages"]["plain"]
    saved = dict(plain)
    adapter.cache_clear()
    try:
        yield plain
    finally:
        plain.clear()
        plain.update(saved)
        adapter.cache_clear()


async def post(body: dict[str, Any]) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=OfflineBackend().async_transport(), base_url="http://x") as http:
        return await http.post("/v1/messages", json=body, headers={"x-api-key": "k"})


async def test_acceptance_follows_the_data_not_the_installed_sdk(edited: dict[str, Any]) -> None:
    body = {"model": MODEL, "max_tokens": 20, "messages": [user("hi")]}
    assert "speed" in sdk_fields("messages", False)  # the SDK types `speed`; the data decides
    assert (await post({**body, "speed": "standard"})).status_code == 200
    del edited["speed"]
    adapter.cache_clear()
    refused = await post({**body, "speed": "standard"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "speed: Extra inputs are not permitted"
    # A field only the data lists (no SDK type) is taken as any JSON value; unlisted, it is refused.
    assert (await post({**body, "ck_probe_field": {"any": [1]}})).status_code == 400
    edited["ck_probe_field"] = ["sdk"]
    adapter.cache_clear()
    assert (await post({**body, "ck_probe_field": {"any": [1]}})).status_code == 200
