"""QR sign-in and devices tests share the HTTP tests' `make_api` (a server with config overrides)."""

from tests.http.conftest import make_api  # noqa: F401  (fixture)
