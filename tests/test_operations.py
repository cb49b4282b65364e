"""The operation rows, the models and the public methods against the spec
(``tests/spec/openapi.yaml``): every method and path of the spec is one row and one public
method on each client, with the spec's success status, path parameters, request body and
result, field for field. The spec and the code cannot drift apart unnoticed."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from emissary import AsyncEmissaryClient, EmissaryClient, models
from emissary._operations import MULTIPART, OPERATIONS, Operation

SPEC = yaml.safe_load((Path(__file__).parent / "spec" / "openapi.yaml").read_text())
METHODS = ("get", "post", "put", "patch", "delete")


def spec_operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in SPEC["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def schema(reference: dict[str, Any]) -> dict[str, Any]:
    """A schema, its ``$ref`` followed."""
    ref = reference.get("$ref")
    if ref is None:
        return reference
    resolved: dict[str, Any] = SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def struct_fields(cls: type[msgspec.Struct]) -> tuple[set[str], set[str]]:
    """A Struct's fields, and those it requires."""
    info = msgspec.structs.fields(cls)
    return {f.name for f in info}, {f.name for f in info if f.required}


BY_ROUTE = {(op.method, op.path): op for op in OPERATIONS}


def test_every_method_and_path_of_the_spec_is_exactly_one_row() -> None:
    assert sorted(spec_operations()) == sorted(BY_ROUTE)
    assert len(BY_ROUTE) == len(OPERATIONS) == 25
    assert len({op.name for op in OPERATIONS}) == 25


@pytest.mark.parametrize("route", sorted(spec_operations()), ids=" ".join)
def test_a_row_says_what_the_spec_says(route: tuple[str, str]) -> None:
    spec, op = spec_operations()[route], BY_ROUTE[route]
    assert op.parameters == tuple(
        p["name"] for p in spec.get("parameters", []) if p["in"] == "path"
    )
    (status,) = [int(code) for code in spec["responses"] if code.startswith("2")]
    assert op.status == status
    success = spec["responses"][str(status)]
    if "content" not in success:  # 204
        assert op.result is None and op.decoder is None
    else:
        returned = schema(success["content"]["application/json"]["schema"])
        check_result(op, returned)
    body = spec.get("requestBody")
    if body is None:
        assert op.body is None
    elif "multipart/form-data" in body["content"]:
        assert op.body == MULTIPART
        form = body["content"]["multipart/form-data"]["schema"]
        assert set(form["properties"]) == {"file", "name"}
        assert struct_fields(models.CreateDatasetRequestBody)[0] == {"file", "name"}
    else:
        sent = schema(body["content"]["application/json"]["schema"])
        assert isinstance(op.body, type)
        fields, required = struct_fields(op.body)
        assert fields == set(sent["properties"])
        assert required == set(sent.get("required", []))
    kind = "create" if route[0] == "POST" and status == 201 else None
    assert op.kind == (kind or op.kind)
    assert (op.kind == "inference") == (op.gen_ai is not None)


def check_result(op: Operation[Any], returned: dict[str, Any]) -> None:
    result = op.result
    if returned.get("type") == "array":
        assert typing.get_origin(result) is list
        (item,) = typing.get_args(result)
        name = returned["items"]["$ref"].rsplit("/", 1)[1]
        assert item is getattr(models, name)
        return
    assert isinstance(result, type) and issubclass(result, msgspec.Struct)
    assert set(struct_fields(result)[0]) == set(returned["properties"])
    assert struct_fields(result)[1] == set()  # a result's fields may all be absent


@pytest.mark.parametrize("name", sorted(SPEC["components"]["schemas"]))
def test_each_model_of_the_spec_has_its_fields_and_requires_none(name: str) -> None:
    if name == "ApiResponse":  # defined by the spec, used by no operation
        return
    cls = getattr(
        models, name.replace("ApiError", "APIError") + ("Data" * name.startswith("ApiError"))
    )
    fields, required = struct_fields(cls)
    assert fields == set(SPEC["components"]["schemas"][name]["properties"])
    if name.startswith("ApiError"):  # error bodies: as the spec requires
        assert required == set(SPEC["components"]["schemas"][name]["required"])
    else:
        assert required == set()


def test_every_result_is_left_out_of_the_cycle_collector() -> None:
    # A decoded answer holds only JSON's values (gc=False on every result model): a batch
    # of 20,000 embeddings keeps the collector's work at the floor's (benchmarks/README).
    import gc

    results = {op.result for op in OPERATIONS if op.result is not None}
    structs = {t for r in results for t in (typing.get_args(r) or (r,))}
    assert len(structs) == 14
    for cls in structs:
        assert issubclass(cls, msgspec.Struct)
        decoded = msgspec.json.decode(b"{}", type=cls)
        assert not gc.is_tracked(decoded), cls


def public_methods(namespace: object, prefix: str) -> dict[str, Any]:
    """Every public method under `namespace` (sub-namespaces walked), by dotted name."""
    found: dict[str, Any] = {}
    for name in dir(namespace):
        if name.startswith("_") or name == "with_raw_response":
            continue
        value = getattr(namespace, name)
        if inspect.ismethod(value):
            found[f"{prefix}{name}"] = value
        elif type(value).__module__.startswith("emissary._"):
            found |= public_methods(value, f"{prefix}{name}.")
    return found


@pytest.mark.parametrize("cls", [EmissaryClient, AsyncEmissaryClient])
def test_each_row_is_one_public_method_on_both_clients_and_their_raw_views(cls: type) -> None:
    client = cls(api_key="k", server_url="http://127.0.0.1:9")
    methods = public_methods(client, "")
    hand_written = {"close", "with_options", "fine_tune"}
    # Long-running work over the rows: batches, uploads and waits (not operations).
    helpers = {"batch", "iter_batch", "upload", "wait", "create_and_wait"}
    over_rows = {name for name in methods if name.rsplit(".", 1)[-1] in helpers}
    assert set(methods) - hand_written - over_rows == {op.name for op in OPERATIONS}
    for op in OPERATIONS:
        *path, method = op.name.split(".")
        namespace: Any = client
        for part in path:
            namespace = getattr(namespace, part)
        assert callable(getattr(namespace.with_raw_response, method))
        assert inspect.signature(getattr(namespace, method)).parameters.keys() >= set(op.parameters)
