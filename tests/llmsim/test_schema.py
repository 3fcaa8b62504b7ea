"""Normalising the three schema dialects, following $ref, and the validator itself."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from llmsim.schema import Resolver, SchemaError, normalize, validate


class Inner(BaseModel):
    quote: str = Field(min_length=3, max_length=200)
    score: float | None = None


class Outer(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    items: list[Inner] = Field(min_length=1, max_length=5)
    inner: Inner | None = None


def test_gemini_openapi_schema_becomes_json_schema() -> None:
    # What google-genai 3.4 sends for response_schema=<pydantic model> (captured on the wire).
    gemini = {
        "type": "OBJECT",
        "properties": {
            "points": {
                "type": "ARRAY",
                "items": {"type": "STRING"},
                "min_items": 1,
                "max_items": 5,
            },
            "score": {"type": "NUMBER", "nullable": True, "minimum": -1.0, "maximum": 1.0},
            "kind": {"type": "STRING", "format": "enum", "enum": ["a", "b"]},
        },
        "property_ordering": ["points", "score", "kind"],
        "required": ["points", "kind"],
    }
    assert normalize(gemini) == {
        "type": "object",
        "properties": {
            "points": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
            "score": {"type": ["number", "null"], "minimum": -1.0, "maximum": 1.0},
            "kind": {"type": "string", "enum": ["a", "b"]},
        },
        "propertyOrdering": ["points", "score", "kind"],
        "required": ["points", "kind"],
    }


def test_property_names_are_not_renamed() -> None:
    schema = normalize({"type": "object", "properties": {"min_items": {"type": "STRING"}}})
    assert list(schema["properties"]) == ["min_items"]


def test_anthropic_description_hints_become_constraints_again() -> None:
    # anthropic's transform_schema moves unsupported keywords into the description.
    schema = normalize(
        {"type": "string", "description": "The quote\n\n{maxLength: 200, minLength: 3}"}
    )
    assert schema["maxLength"] == 200 and schema["minLength"] == 3
    assert normalize({"type": "integer", "description": "{minimum: 1, maximum: 5}"})["maximum"] == 5
    # A constraint that is really there wins over the hint.
    assert (
        normalize({"type": "string", "maxLength": 9, "description": "{maxLength: 200}"})[
            "maxLength"
        ]
        == 9
    )


def test_resolver_follows_refs_and_reports_bad_ones() -> None:
    root = Outer.model_json_schema()
    resolver = Resolver(root)
    assert resolver.resolve({"$ref": "#/$defs/Inner"})["properties"]["quote"]["maxLength"] == 200
    assert resolver.resolve({"$ref": "#"}) is root
    with pytest.raises(SchemaError):
        resolver.resolve({"$ref": "#/$defs/Missing"})
    with pytest.raises(SchemaError):
        Resolver({"$defs": {"A": {"$ref": "#/$defs/A"}}}).resolve({"$ref": "#/$defs/A"})


def test_validator_accepts_what_pydantic_accepts_and_names_each_problem() -> None:
    schema = Outer.model_json_schema()
    good = {"label": "neutral", "items": [{"quote": "abc", "score": None}], "inner": None}
    Outer.model_validate(good)
    assert validate(good, schema) == []
    bad = {"label": "sad", "items": [], "inner": {"quote": "ab", "score": "x"}, "extra": 1}
    errors = validate(bad, schema)
    assert any("$.label" in e for e in errors)
    assert any("fewer than 1 items" in e for e in errors)
    assert any("$.inner" in e for e in errors)
    assert validate({"items": []}, schema)[0] == "$: missing required property 'label'"


@pytest.mark.parametrize(
    ("value", "schema", "ok"),
    [
        (True, {"type": "integer"}, False),
        (1, {"type": "number"}, True),
        (2.0, {"type": "integer"}, True),
        (5, {"type": "integer", "exclusiveMaximum": 5}, False),
        (0.3, {"type": "number", "multipleOf": 0.1}, True),
        ([1, 1], {"type": "array", "uniqueItems": True}, False),
        ("x", {"oneOf": [{"type": "string"}, {"minLength": 1}]}, False),
        ({"a": 1}, {"type": "object", "additionalProperties": False}, False),
        ({"a": 1}, {"type": "object", "additionalProperties": {"type": "integer"}}, True),
        (None, {"type": ["string", "null"]}, True),
        ("a", {"not": {"type": "string"}}, False),
        (
            [1, "a"],
            {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
            True,
        ),
    ],
)
def test_validator_keywords(value: object, schema: dict[str, object], ok: bool) -> None:
    assert (validate(value, schema) == []) is ok
