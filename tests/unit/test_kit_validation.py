"""The FastAPI-shaped validation kit: the items the Statewave and semvec surfaces send for a bad request."""

import pydantic
import pytest

from stigmer.api.kit import validation


class Item(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=1, max_length=3)
    count: int = pydantic.Field(default=1, ge=1, le=10)


class Body(pydantic.BaseModel):
    items: list[Item]
    flag: bool = False


def items(raw: bytes, model=Body):
    with pytest.raises(validation.RequestInvalid) as info:
        validation.body(raw, model)
    assert info.value.status == 422 and info.value.code == "validation_error"
    return info.value.items


def test_a_valid_body_parses_and_unknown_fields_are_ignored():
    got = validation.body(b'{"items": [{"name": "ab", "count": "3"}], "extra": 1}', Body)
    assert got.items[0].name == "ab" and got.items[0].count == 3 and got.flag is False


def test_every_field_error_is_reported_together_with_its_location():
    got = items(b'{"items": [{"name": ""}, {"name": "abcd", "count": 11}], "flag": "maybe"}')
    assert [(i["type"], i["loc"]) for i in got] == [
        ("string_too_short", ["body", "items", 0, "name"]),
        ("string_too_long", ["body", "items", 1, "name"]),
        ("less_than_equal", ["body", "items", 1, "count"]),
        ("bool_parsing", ["body", "flag"]),
    ]
    assert got[0]["msg"] == "String should have at least 1 character" and got[0]["ctx"] == {"min_length": 1}
    assert got[2]["input"] == 11 and got[2]["ctx"] == {"le": 10}


def test_missing_body_missing_field_and_non_object():
    assert items(b"") == [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    assert items(b"{}")[0] == {"type": "missing", "loc": ["body", "items"], "msg": "Field required", "input": {}}
    got = items(b"[1, 2]")
    assert got[0]["type"] == "model_attributes_type" and got[0]["loc"] == ["body"]
    assert got[0]["msg"] == "Input should be a valid dictionary or object to extract fields from"


@pytest.mark.parametrize("raw, offset", [(b'{"items": [}', 11), (b"{", 1), (b'{"a": 1,}', 8)])
def test_bad_json_is_json_invalid_at_its_character_offset(raw, offset):
    [item] = items(raw)
    assert item["type"] == "json_invalid" and item["loc"] == ["body", offset]
    assert item["msg"] == "JSON decode error" and item["input"] == {} and item["ctx"]["error"]


def test_bad_utf8_and_deep_nesting_are_json_invalid_not_a_crash():
    assert items(b'{"items": "\xff"}')[0]["type"] == "json_invalid"
    assert items(b"[" * 100_000 + b"]" * 100_000)[0]["type"] == "json_invalid"


def test_query_parameters_validate_under_query():
    class Page(pydantic.BaseModel):
        limit: int = pydantic.Field(default=20, ge=1, le=100)

    assert validation.query({"limit": "5", "other": "x"}, Page).limit == 5
    with pytest.raises(validation.RequestInvalid) as info:
        validation.query({"limit": "lots"}, Page)
    assert info.value.items[0]["loc"] == ["query", "limit"] and info.value.items[0]["type"] == "int_parsing"
    assert info.value.items[0]["msg"] == "Input should be a valid integer, unable to parse string as an integer"
