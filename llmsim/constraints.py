"""Fitting generated values to a schema's constraints: types, bounds, steps and lengths."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from llmsim.schema import json_type


def infer_type(schema: Mapping[str, Any]) -> str:
    if "properties" in schema or "additionalProperties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema or "minItems" in schema:
        return "array"
    if any(
        k in schema
        for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
    ):
        return "number"
    return "string"


def number_bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow_raw, xhigh_raw = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    xlow = xhigh = False
    if xlow_raw is True:
        xlow = True
    elif isinstance(xlow_raw, int | float) and (low is None or xlow_raw >= low):
        low, xlow = xlow_raw, True
    if xhigh_raw is True:
        xhigh = True
    elif isinstance(xhigh_raw, int | float) and (high is None or xhigh_raw <= high):
        high, xhigh = xhigh_raw, True
    return (
        float(low) if isinstance(low, int | float) else None,
        float(high) if isinstance(high, int | float) else None,
        xlow,
        xhigh,
    )


def fit_number(
    value: float, *, low: float, high: float, xlow: bool, xhigh: bool, step: Any, integer: bool
) -> int | float:
    if integer:
        lo = math.floor(low) + 1 if xlow and float(low).is_integer() else math.ceil(low)
        hi = math.ceil(high) - 1 if xhigh and float(high).is_integer() else math.floor(high)
        if isinstance(step, int | float) and step > 0:
            k_lo, k_hi = math.ceil(lo / step), math.floor(hi / step)
            k = min(max(round(value / step), k_lo), max(k_lo, k_hi))
            return round(k * step)
        return int(min(max(round(value), lo), max(lo, hi)))
    if isinstance(step, int | float) and step > 0:
        k_lo = math.ceil(low / step) + (1 if xlow and (low / step).is_integer() else 0)
        k_hi = math.floor(high / step) - (1 if xhigh and (high / step).is_integer() else 0)
        k = min(max(round(value / step), k_lo), max(k_lo, k_hi))
        result = round(k * step, 10)
        return (
            int(result) if float(result).is_integer() and json_type(step) == "integer" else result
        )
    margin = (high - low) * 1e-3 if high > low else 0.0
    floor = low + margin if xlow else low
    ceiling = high - margin if xhigh else high
    rounded = round(min(max(value, floor), ceiling), 2)
    if rounded < floor or rounded > ceiling:
        rounded = min(max(value, floor), ceiling)
    return rounded


def fit_text(text: str, min_len: int, max_len: int | None, filler: list[str]) -> str:
    pad = filler or ["detail"]
    i = 0
    while len(text) < min_len:
        text = f"{text} {pad[i % len(pad)]}".strip()
        i += 1
    if max_len is not None and len(text) > max_len:
        cut = text.rfind(" ", 0, max_len + 1)
        text = text[:cut] if cut >= max(1, min_len) and cut > max_len // 2 else text[:max_len]
        text = text.rstrip() if len(text.rstrip()) >= min_len else text
    return text
