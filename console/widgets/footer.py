"""Textual's footer, without its leak.

Each time the bindings change the footer recomposes, and every new key data-binds `compact` to
the footer: a watcher entry on the footer that holds the key. Textual prunes the entries of
removed keys only when `compact` itself changes — never, here — so every key the footer ever drew
stayed alive with its styles and caches (about 25 keys per patient an agent worked). After each
recompose the entries of keys that are gone are dropped.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    async def recompose(self) -> None:
        await super().recompose()
        watchers: dict[str, list[tuple[Any, Any]]] = getattr(self, "__watchers", {})
        for entries in watchers.values():
            entries[:] = [
                (node, callback)
                for node, callback in entries
                if not (getattr(node, "_closing", False) or getattr(node, "_closed", False))
                and (node is self or node.parent is not None)
            ]
