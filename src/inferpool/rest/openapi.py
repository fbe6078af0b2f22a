"""The OpenAPI 3.0 document of the REST front end, served at
`/v2/docs/openapi.json`."""

from __future__ import annotations

import html
from typing import Any

from ..settings import Settings

_DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }


_ERRORS = {
    "400": _error_response(
        "Invalid request; the message names the field and the problem"
    ),
    "404": _error_response("Unknown model or version"),
    "413": _error_response("Request body larger than max_body_size"),
    "500": _error_response("The model raised; the message names the exception"),
    "503": _error_response("Model not ready, server overloaded or shutting down"),
    "504": _error_response("The request took longer than the model's timeout"),
}

_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Parameters": {"type": "object", "additionalProperties": True},
    "RequestInput": {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": _DATATYPES},
            "parameters": _ref("Parameters"),
            "data": {"type": "array", "items": {}},
        },
    },
    "RequestOutput": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "parameters": _ref("Parameters")},
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": _ref("Parameters"),
            "inputs": {"type": "array", "items": _ref("RequestInput")},
            "outputs": {"type": "array", "items": _ref("RequestOutput")},
        },
    },
    "ResponseOutput": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": _ref("Parameters"),
            "data": {"type": "array", "items": {}},
        },
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": _ref("Parameters"),
            "outputs": {"type": "array", "items": _ref("ResponseOutput")},
        },
    },
    "MetadataTensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "MetadataServerResponse": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "MetadataModelResponse": {
        "type": "object",
        "required": ["name", "platform"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _ref("MetadataTensor")},
            "outputs": {"type": "array", "items": _ref("MetadataTensor")},
        },
    },
    "RepositoryIndexRequest": {
        "type": "object",
        "properties": {"ready": {"type": "boolean"}},
    },
    "RepositoryIndexItem": {
        "type": "object",
        "required": ["name", "state"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "state": {
                "type": "string",
                "enum": ["READY", "LOADING", "UNLOADING", "UNAVAILABLE"],
            },
            "reason": {"type": "string"},
        },
    },
}


def _json_body(schema: str, required: bool = True) -> dict[str, Any]:
    return {
        "required": required,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _ok(description: str, schema: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": _ref(schema)}}
    return response


def _infer_operation(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "post": {
            "summary": "Run inference",
            "parameters": parameters,
            "requestBody": _json_body("InferenceRequest"),
            "responses": {
                "200": _ok("Inference result", "InferenceResponse"),
                **_ERRORS,
            },
        }
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    """Build the OpenAPI document of the V2 REST routes that inferpool serves."""
    status_only = {"200": _ok("Yes"), "503": _error_response("No")}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "inferpool V2 inference protocol",
            "version": settings.server_version,
        },
        "paths": {
            "/v2/health/live": {
                "get": {"summary": "Server liveness", "responses": {"200": _ok("Live")}}
            },
            "/v2/health/ready": {
                "get": {
                    "summary": "Server readiness: every model loaded and a worker ready",
                    "responses": status_only,
                }
            },
            "/v2": {
                "get": {
                    "summary": "Server metadata",
                    "responses": {"200": _ok("Metadata", "MetadataServerResponse")},
                }
            },
            "/v2/models/{name}": {
                "get": {
                    "summary": "Model metadata",
                    "parameters": [_NAME],
                    "responses": {
                        "200": _ok("Metadata", "MetadataModelResponse"),
                        **_ERRORS,
                    },
                }
            },
            "/v2/models/{name}/versions/{version}": {
                "get": {
                    "summary": "Model version metadata",
                    "parameters": [_NAME, _VERSION],
                    "responses": {
                        "200": _ok("Metadata", "MetadataModelResponse"),
                        **_ERRORS,
                    },
                }
            },
            "/v2/models/{name}/ready": {
                "get": {
                    "summary": "Model readiness",
                    "parameters": [_NAME],
                    "responses": {**status_only, "404": _ERRORS["404"]},
                }
            },
            "/v2/models/{name}/versions/{version}/ready": {
                "get": {
                    "summary": "Model version readiness",
                    "parameters": [_NAME, _VERSION],
                    "responses": {**status_only, "404": _ERRORS["404"]},
                }
            },
            "/v2/models/{name}/infer": _infer_operation([_NAME]),
            "/v2/models/{name}/versions/{version}/infer": _infer_operation(
                [_NAME, _VERSION]
            ),
            "/v2/repository/index": {
                "post": {
                    "summary": "List the models of the repository with their states",
                    "requestBody": _json_body("RepositoryIndexRequest", required=False),
                    "responses": {
                        "200": {
                            "description": "Index",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": _ref("RepositoryIndexItem"),
                                    }
                                }
                            },
                        },
                        "400": _ERRORS["400"],
                    },
                }
            },
            "/v2/repository/models/{name}/load": {
                "post": {
                    "summary": "Load or reload a model from the repository folder",
                    "parameters": [_NAME],
                    "responses": {"200": _ok("Loaded"), **_ERRORS},
                }
            },
            "/v2/repository/models/{name}/unload": {
                "post": {
                    "summary": "Unload a model",
                    "parameters": [_NAME],
                    "responses": {"200": _ok("Unloaded"), **_ERRORS},
                }
            },
        },
        "components": {"schemas": _SCHEMAS},
    }


def docs_page(settings: Settings) -> str:
    """Render the OpenAPI document as a self-contained HTML page (no script
    or stylesheet from elsewhere, so it works without network access)."""
    document = openapi_document(settings)
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = ", ".join(sorted(operation.get("responses", {})))
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(operation.get('summary', ''))}</td>"
                f"<td>{html.escape(statuses)}</td></tr>"
            )
    title = html.escape(document["info"]["title"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;"
        "text-align:left;border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{title}</h1>"
        '<p>Errors are JSON objects <code>{"error": "..."}</code>. '
        "The machine-readable document is at "
        "<a href='/v2/docs/openapi.json'>/v2/docs/openapi.json</a>.</p>"
        "<table><tr><th>Method</th><th>Path</th><th>Summary</th><th>Statuses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
