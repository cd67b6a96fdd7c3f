"""What the fuzz suite found outside the areas of issue 9's other fixes, each pinned by a test.

- A multipart upload whose form aiohttp cannot walk (no boundary, no starting boundary, an
  empty boundary, a control character in a part's header) was a 500; it is 400
  `invalid_request` (schemathesis, `POST /api/v1/files`).
- The OpenAPI document typed every path and query parameter as a bare string and described no
  body for the two routes that take raw bytes, so schemathesis could not make values the
  server must accept; the contract's naming rules now type them.
"""

from __future__ import annotations

import pytest

from ..conftest import Api
from .contract import check_http_answer


@pytest.mark.parametrize(("content_type", "body"), [
    ("multipart/form-data", b""),
    ("multipart/form-data; boundary=x", b"not a form"),
    ("multipart/form-data; boundary=", b"--\r\n"),
    ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="q\x05y"\r\n\r\nv\r\n--x--\r\n'),
])
async def test_a_malformed_multipart_form_is_400(api: Api, content_type: str, body: bytes) -> None:
    user = await api.register("uploader")
    status, answer = await user.call("POST", "/api/v1/files", data=body, headers={"Content-Type": content_type})
    check_http_answer(status, "application/json", answer, f"POST /api/v1/files ({content_type}) {body!r}")
    assert status == 400 and answer["error"]["code"] == "invalid_request", answer


async def test_the_openapi_document_types_parameters_by_the_contracts_names(api: Api) -> None:
    status, document = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200
    paths = document["paths"]

    def parameter(path: str, method: str, name: str) -> dict[str, object]:
        found = [p for p in paths[path][method]["parameters"] if p["name"] == name]
        assert len(found) == 1, (path, method, name)
        return dict(found[0]["schema"])

    assert parameter("/api/v1/conversations", "get", "limit") == {"type": "integer", "minimum": 1, "maximum": 200}
    assert parameter("/api/v1/conversations", "get", "cursor") == {"type": "string"}
    history = "/api/v1/conversations/{cid}/messages"
    assert parameter(history, "get", "after_seq")["type"] == "integer"
    assert "p:" in str(parameter(history, "get", "cid")["pattern"])
    assert parameter("/api/v1/groups/{group_id}", "get", "group_id") == {"type": "string", "pattern": "^[0-9]{1,20}$"}
    assert parameter("/api/v1/friends/requests", "get", "direction")["enum"] == ["in", "out"]
    upload = paths["/api/v1/files"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
    chunk = paths["/api/v1/uploads/{upload_id}/chunks/{index}"]["put"]
    assert chunk["requestBody"]["content"]["application/octet-stream"]["schema"]["format"] == "binary"
    assert parameter("/api/v1/uploads/{upload_id}/chunks/{index}", "put", "index") == {"type": "integer", "minimum": 0}
