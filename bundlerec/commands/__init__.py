"""Subcommands of ``bundlerec`` beyond the core five, one module each (see ``cli.build_parser``).

Each module defines ``register(subparsers)``; the shared helpers (errors, destinations, output
formats) live in ``bundlerec.cli`` and ``bundlerec.model_dir``.
"""
