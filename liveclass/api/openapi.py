"""The OpenAPI 3 document, built from the route declarations and their pydantic models."""

from __future__ import annotations

import re

from pydantic import BaseModel

from liveclass import __version__
from liveclass.api.routing import ANY_USER, PUBLIC, Route

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}


def _ref(model: type[BaseModel], schemas: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = sub
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_parameters(model: type[BaseModel]) -> list[dict]:
    """One parameter per field of a route's query model, typed with its limits (liveclass/api/query.py)."""
    schema = model.model_json_schema()
    defs, required = schema.get("$defs", {}), set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        # An optional parameter is left out, never sent as null: its schema is the value's own.
        choices = [p for p in prop.pop("anyOf", []) if p != {"type": "null"}]
        if len(choices) == 1:
            prop.update(choices[0])
        elif choices:
            prop["anyOf"] = choices
        if prop.get("default", 0) is None:
            del prop["default"]
        if "$ref" in prop:  # an enum: written out, so the parameter reads on its own
            prop.update(defs[prop.pop("$ref").rsplit("/", 1)[-1]])
            prop.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def build_openapi(routes: list[Route], prefix: str) -> dict:
    schemas: dict = {"Error": _ERROR_SCHEMA}
    paths: dict = {}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for route in routes:
        if route.path.startswith("/healthz") or route.path.startswith("/readyz"):
            path = route.path
        else:
            path = prefix + route.path
        # Path parameters are ids (integers), except the random token of a share link.
        params = [
            {
                "name": n,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if n.endswith("_id") else "string"},
            }
            for n in re.findall(r"{(\w+)}", route.path)
        ]
        if route.query is not None:
            params += _query_parameters(route.query)
        if isinstance(route.access, frozenset):
            who = "Account roles: " + ", ".join(sorted(r.value for r in route.access)) + "."
        elif route.access == ANY_USER:
            who = "Any logged-in account."
        else:
            who = "Anyone."
        ok: dict = {"description": "Success"}
        if route.response is not None:
            schema = _ref(route.response, schemas)
            if route.many:
                schema = {
                    "type": "object",
                    "required": ["items"],
                    "properties": {"items": {"type": "array", "items": schema}},
                }
            ok["content"] = {"application/json": {"schema": schema}}
        elif route.produces is not None:
            ok["content"] = {route.produces: {"schema": {"type": "string", "format": "binary"}}}
        operation: dict = {
            "summary": route.summary,
            "description": who,
            "tags": route.tags,
            "operationId": route.handler.__name__,
            "parameters": params,
            "responses": {
                str(route.status): ok,
                "400": {"description": "Invalid request", **error},
                "default": {"description": "Error", **error},
            },
        }
        for status, description in route.other_statuses.items():
            operation["responses"][str(status)] = {**ok, "description": description}
        if route.access != PUBLIC:
            operation["security"] = [{"cookieAuth": [], "csrfToken": []}, {"bearerAuth": []}]
            operation["responses"]["401"] = {"description": "Not logged in", **error}
            operation["responses"]["403"] = {"description": "Not allowed", **error}
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(route.body, schemas)}},
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LiveClass API",
            "version": __version__,
            "description": "Accounts, classes, periods and live sessions of a LiveClass server. "
            'Errors are {"error": {"code", "message"}}. See docs/api.md.',
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "liveclass_session"},
                "csrfToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "Required with the cookie on POST, PUT, PATCH and DELETE.",
                },
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Token from POST /auth/login with issue_token: true.",
                },
            },
        },
    }
