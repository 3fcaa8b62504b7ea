"""The three real SDK clients, configured as production configures them, and plain HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types

from llmsim import Simulator

#: Client timeout for tests: generous for a loaded machine, short enough for timeout tests.
CLIENT_TIMEOUT_S = 10.0


def anthropic_for(sim: Simulator, timeout_s: float = CLIENT_TIMEOUT_S) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sim", base_url=sim.base_url, max_retries=0, timeout=timeout_s
    )


def gemini_for(sim: Simulator, timeout_s: float = CLIENT_TIMEOUT_S) -> genai.Client:
    options = types.HttpOptions(
        base_url=sim.base_url, api_version="v1beta", timeout=int(timeout_s * 1000)
    )
    return genai.Client(api_key="sim", http_options=options)


def openai_for(sim: Simulator, timeout_s: float = CLIENT_TIMEOUT_S) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sim", base_url=sim.base_url + "/v1", max_retries=0, timeout=timeout_s
    )


def http(
    sim: Simulator,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """A plain HTTP call (no SDK): status, lower-cased headers, decoded JSON (or text).

    Always to the simulator's own ``http://`` base URL, hence the S310 exemptions."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(sim.base_url + path, data=data, method=method)  # noqa: S310
    request.add_header("content-type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_S) as response:  # noqa: S310
            status, head, payload = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, head, payload = exc.code, dict(exc.headers), exc.read()
        exc.close()
    text = payload.decode()
    try:
        decoded: Any = json.loads(text)
    except json.JSONDecodeError:
        decoded = text
    return status, {k.lower(): v for k, v in head.items()}, decoded
