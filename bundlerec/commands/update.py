"""``bundlerec update``: fold the event store's new events into a saved model (docs/service.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]

_ATTEMPTS = 3


def cmd_update(args: argparse.Namespace) -> int:
    from bundlerec.cli import _load_model
    from bundlerec.progress import say
    from bundlerec.store import EventStore, as_events

    if not Path(args.store).is_file():
        raise FileNotFoundError(2, "No such event store", str(args.store))
    with EventStore(args.store, args.retention_days) as store:
        for _ in range(_ATTEMPTS):
            generation = store.generation
            # The store holds the ids as the service wrote them (pseudonyms under the model's
            # key): folding needs no key, and a key given must be the model's.
            model = _load_model(args, need_key=False)
            events = store.events(after=model.store_seq)
            if events.empty:
                print(f"nothing to fold: {args.model} holds every stored event")
                return 0
            model.update(
                as_events(events),
                epochs=args.epochs,
                pseudonymised=True,
            )
            model.store_seq = int(events["seq"].iloc[-1])
            with store.locked():  # a forget holds it while it rewrites the store and the model
                if store.generation == generation:
                    model.save(args.model)
                    print(
                        f"folded {len(events)} events (store seq {model.store_seq}) into "
                        f"{args.model}"
                    )
                    return 0
            say("a shopper was forgotten meanwhile: folding again", not args.quiet)
    raise ValueError(f"shoppers were forgotten during {_ATTEMPTS} folds in a row; run it again")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def register(subparsers) -> None:
    from bundlerec.cli import _key_file, _positive

    update = subparsers.add_parser(
        "update", help="fold the events of an event store into a saved model"
    )
    update.add_argument("--model", required=True, type=Path, help="model directory (rewritten)")
    update.add_argument("--store", required=True, type=Path, help="SQLite event store")
    update.add_argument(
        "--epochs",
        type=_count,
        default=0,
        help="fine-tune the sequence model this many epochs on the shoppers with new events "
        "(default 0: counts and histories only)",
    )
    update.add_argument(
        "--retention-days", type=_positive(float), help="drop stored events older than this"
    )
    update.add_argument("--quiet", action="store_true", help="no progress messages")
    _key_file(update, "not needed (the store holds pseudonyms), checked when given")
    update.set_defaults(func=cmd_update)
