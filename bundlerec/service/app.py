"""The HTTP API of the service, on FastAPI (an ASGI app served by uvicorn).

FastAPI was chosen for what it gives without hand-written code: request validation with
messages that name the field (pydantic), an OpenAPI description and its page at ``/docs``, and
both kinds of endpoint: the reads (items, bundles, audience) are ``async`` and run on the event
loop one after the other, which on a CPU-bound model under Python's GIL serves more requests per
second than a pool of threads taking turns; the writes (events, forget) wait for the disk and run
in FastAPI's thread pool, so reads go on meanwhile. The endpoints are thin:
:class:`~bundlerec.service.state.Service` does the work.

Errors: an unknown shopper or item is a 404, bad input a 400 (the library's ValueError) or 422
(validation), a missing or wrong API key a 401, each with ``{"detail": message}``; anything
unexpected is a 500 with ``{"detail": "internal error"}`` and the traceback in the log only.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bundlerec.progress import logger
from bundlerec.service.state import Service

__all__ = ["MAX_EVENTS_PER_POST", "Event", "create_app"]

MAX_EVENTS_PER_POST = 10_000
_PAGE = Path(__file__).with_name("static") / "index.html"


class Event(BaseModel):
    """One shopper event, as in an events file (docs/data.md)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=256)
    item_id: str = Field(min_length=1, max_length=256)
    event: Literal["view", "click", "cart", "purchase"] = "purchase"
    timestamp: int | datetime = Field(
        description="seconds since 1970-01-01 UTC, or an ISO 8601 date-time"
    )
    basket_id: str | None = Field(default=None, max_length=256)
    price: float | None = Field(default=None, ge=0)
    quantity: float | None = Field(default=None, gt=0)

    @field_validator("timestamp")
    @classmethod
    def _seconds(cls, value: int | datetime) -> int:
        if isinstance(value, datetime):
            stamp = pd.Timestamp(value)
            stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
            return int(stamp.value // 10**9)
        if not 0 <= value < 10**11:
            raise ValueError("timestamp must be seconds since 1970 (0 .. 10^11)")
        return value


def _ids(values: list[str] | None) -> list[str]:
    """Ids given as repeated parameters and/or comma-separated lists."""
    return [part.strip() for v in values or [] for part in v.split(",") if part.strip()]


def _answer(work: Callable[[], Any]) -> JSONResponse:
    """``work()``'s result as JSON, with the time the answer took (the work and its JSON) in a
    ``Server-Timing`` header, ``compute;dur=<ms>``: what a client's latency holds beyond it is
    waiting (for the event loop, the network, the client itself)."""
    start = time.perf_counter()
    response = JSONResponse(work())
    response.headers["Server-Timing"] = f"compute;dur={(time.perf_counter() - start) * 1e3:.2f}"
    return response


def create_app(service: Service, api_key: str | None = None) -> FastAPI:
    """The ASGI app over ``service``; with ``api_key`` every call but ``/health`` (and the
    pages ``/``, ``/docs``, which hold no data) needs ``Authorization: Bearer <api_key>``."""
    app = FastAPI(
        title="bundlerec",
        description="Bundles, items and audiences from a bundlerec model; events and forget.",
        version="1",
    )
    app.state.service = service
    expected = None if api_key is None else f"Bearer {api_key}".encode()

    async def authorised(request: Request) -> None:
        if expected is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                401,
                "missing or wrong API key (Authorization: Bearer <key>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    guarded = [Depends(authorised)]

    @app.exception_handler(KeyError)
    async def not_found(request: Request, err: KeyError) -> JSONResponse:
        return JSONResponse({"detail": str(err.args[0]) if err.args else "not found"}, 404)

    @app.exception_handler(ValueError)
    async def bad_request(request: Request, err: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, 400)

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:
        logger.error("service: %s %s failed", request.method, request.url.path, exc_info=err)
        return JSONResponse({"detail": "internal error"}, 500)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, and which model is served."""
        return {"status": "ok", "model": service.describe()}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(_PAGE, media_type="text/html")

    @app.get("/v1/items", dependencies=guarded)
    async def items(
        user: str,
        k: Annotated[int, Query(ge=1, le=1000)] = 10,
        anchor: Annotated[list[str] | None, Query()] = None,
        cart: Annotated[list[str] | None, Query()] = None,
    ) -> JSONResponse:
        """Top-k items for a shopper (anchor and cart items are context, never repeated)."""
        return _answer(lambda: service.items(user, k, _ids(anchor), _ids(cart)))

    @app.get("/v1/bundles", dependencies=guarded)
    async def bundles(
        user: str,
        k: Annotated[int, Query(ge=1, le=100)] = 5,
        size: Annotated[int, Query(ge=1, le=10)] = 3,
        anchor: Annotated[list[str] | None, Query()] = None,
        cart: Annotated[list[str] | None, Query()] = None,
        budget: Annotated[float | None, Query(gt=0)] = None,
        max_per_category: Annotated[int, Query(ge=1)] = 1,
    ) -> JSONResponse:
        """Bundles for a shopper, as ``bundlerec recommend --format json`` prints them."""
        return _answer(
            lambda: service.bundles(
                user,
                k=k,
                size=size,
                anchor=_ids(anchor) or None,
                cart=_ids(cart) or None,
                budget=budget,
                max_per_category=max_per_category,
            )
        )

    @app.get("/v1/audience", dependencies=guarded)
    async def audience(
        items: Annotated[list[str], Query()],
        top: Annotated[int, Query(ge=1, le=100_000)] = 100,
        min_probability: Annotated[float | None, Query(ge=0, le=1)] = None,
        horizon_days: Annotated[float, Query(gt=0, le=3650)] = 30.0,
        next_purchase: bool = False,
    ) -> JSONResponse:
        """The shoppers most likely to buy all of ``items`` within ``horizon_days`` (or, with
        ``next_purchase=true``, as their next purchase); ids are pseudonyms when the model holds
        pseudonyms."""
        horizon = None if next_purchase else horizon_days
        return _answer(lambda: service.audience(_ids(items), top, min_probability, horizon))

    @app.get("/v1/products", dependencies=guarded)
    async def products() -> JSONResponse:
        """Every item of the model with its category and price (for the owner's page)."""
        return JSONResponse({"items": service.products()})

    @app.post("/v1/events", dependencies=guarded)
    def events(
        batch: Annotated[list[Event], Field(max_length=MAX_EVENTS_PER_POST)],
    ) -> dict[str, int]:
        """Store events durably, then count them at once; ``accepted`` is sent after the
        commit."""
        return {"accepted": service.ingest([e.model_dump() for e in batch])}

    @app.delete("/v1/users/{user_id}", dependencies=guarded)
    def forget(user_id: str) -> dict[str, Any]:
        """Forget a shopper: their events, counts and id leave the store and the model."""
        return service.forget(user_id)

    @app.get("/v1/stats", dependencies=guarded)
    async def stats() -> dict[str, Any]:
        """Events stored, the last one applied, the model's size."""
        return service.stats()

    return app
