"""``bundlerec serve``: the real-time service over HTTP (docs/service.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]

# Seconds an idle keep-alive connection stays open: longer than clients keep theirs (httpx 5 s,
# browsers up to 60 s, proxies' idle timeouts), so that a client never reuses a connection that
# the server is closing at that moment (uvicorn's default, 5 s, races httpx's).
KEEP_ALIVE_S = 75


def _api_key(path: str | None) -> str | None:
    if path is None:
        return None
    key = Path(path).read_text().strip()
    if len(key) < 16:
        raise ValueError(f"{path}: the API key must be at least 16 characters")
    return key


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bundlerec.privacy import load_key
    from bundlerec.progress import say
    from bundlerec.service import Service, create_app
    from bundlerec.store import EventStore

    api_key = _api_key(args.api_key_file)
    pseudonymizer = load_key(args.key_file)
    store = None if args.store is None else EventStore(args.store, args.retention_days)
    service = Service(
        args.model,
        store,
        pseudonymizer,
        recount_every=args.recount_every,
        reload_every=args.reload_every,
    )
    if store is not None and pseudonymizer is None:
        say("note: no pseudonym key: the event store keeps shopper ids as given", True)
    app = create_app(service, api_key)
    service.start()
    say(f"serving {args.model} on http://{args.host}:{args.port}/ (API at /docs)", True)
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    finally:
        service.stop()
        if store is not None:
            store.close()
    print("stopped", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    from bundlerec.cli import _positive

    serve = subparsers.add_parser(
        "serve", help="serve bundles, items and audiences over HTTP; take events and forget"
    )
    serve.add_argument("--model", required=True, type=Path, help="model directory to serve")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_positive(int), default=8000)
    serve.add_argument(
        "--store", type=Path, help="SQLite event store (created if absent): enables POST events"
    )
    serve.add_argument(
        "--api-key-file",
        help="file holding the API key: every call but /health then needs "
        "'Authorization: Bearer <key>'",
    )
    serve.add_argument(
        "--key-file",
        help="file holding the pseudonym key (default: the BUNDLEREC_PSEUDONYM_KEY variable); "
        "required by a model of pseudonyms",
    )
    serve.add_argument(
        "--retention-days",
        type=_positive(float),
        help="drop stored events older than this many days",
    )
    serve.add_argument(
        "--recount-every",
        type=_positive(float),
        default=1.0,
        help="seconds between co-purchase count updates (events count at once regardless)",
    )
    serve.add_argument(
        "--reload-every",
        type=_positive(float),
        default=5.0,
        help="seconds between checks for a new model saved by 'bundlerec update'",
    )
    serve.set_defaults(func=cmd_serve)
