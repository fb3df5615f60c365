"""The real-time service: recommendations over HTTP, events that count at once, forget.

:func:`create_app` builds the ASGI app (FastAPI) over a :class:`Service` (the model, the event
store of :mod:`bundlerec.store` and the feedback loop of :mod:`bundlerec.feedback`); ``bundlerec
serve`` runs it with uvicorn. See docs/service.md.
"""

from bundlerec.service.app import create_app
from bundlerec.service.state import Service

__all__ = ["Service", "create_app"]
