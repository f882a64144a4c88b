"""``usedge serve``: frames over a WebSocket from scanners whose acquisition software is not Python.

    from usedge.serve import ServeConfig, create_app, run
    config = ServeConfig(token="...")
    run(create_app(usedge.load("out/bundle"), config), config)

The protocol (:mod:`usedge.serve.protocol`) is pure and always importable; the app needs the ``serve`` extra
(fastapi, uvicorn, websockets), imported only when :func:`create_app` / :class:`ServeConfig` are first used.
See docs/serve.md.
"""
from __future__ import annotations

from typing import Any

from usedge.serve import protocol

__all__ = ["ServeConfig", "create_app", "new_token", "protocol", "run"]

_LAZY = ("ServeConfig", "create_app", "new_token", "run", "uvicorn_config")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from usedge.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'usedge.serve' has no attribute {name!r}")
