"""Textual's footer, with its keys updated in place.

Textual's footer recomposes each time the bindings change: it removes every key widget and mounts
new ones, each styled anew, and each new key data-binds `compact` to the footer — a watcher entry
that holds the key and is pruned only when `compact` itself changes (never, here), so every key
the footer ever drew stayed alive (about 25 keys per patient an agent worked). On the agent's
screen that was the largest single cost of pressing `r` (a profile of 55 presses: a fifth of the
event loop's time between the key and the frame, mounting ~8 keys and restyling each twice).

Here the keys already on screen are given the new bindings in place; only a difference in count
mounts or removes keys, and nothing changes when the keys shown are the same. New keys take the
footer's `compact` once (it never changes here) instead of a data binding. What is drawn is the
same as Textual's footer draws; a footer with binding groups falls back to Textual's recompose.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey


class KeySpec(NamedTuple):
    key: str
    key_display: str
    description: str
    action: str
    disabled: bool
    tooltip: str


def spec_of(key: FooterKey) -> KeySpec:
    tooltip = key.tooltip if isinstance(key.tooltip, str) else ""
    return KeySpec(
        key.key, key.key_display, key.description, key.action, key._disabled, tooltip or ""
    )


PALETTE = "-command-palette"


class Footer(TextualFooter):
    def _wanted(self) -> tuple[list[KeySpec], KeySpec | None] | None:
        """The keys to show (as Textual's compose would yield them) and the command palette's;
        None when a binding group is shown (Textual's own recompose draws those)."""
        active = self.screen.active_bindings
        by_action: dict[str, tuple[Any, bool, str]] = {}
        for _node, binding, enabled, tooltip in active.values():
            if binding.show:
                by_action.setdefault(binding.action, (binding, enabled, tooltip))
        groups = [b.group for b, _, _ in by_action.values() if b.group is not None]
        if len(groups) != len(set(groups)):
            return None
        self.styles.grid_size_columns = len(by_action)
        get_display = self.app.get_key_display
        keys = [
            KeySpec(b.key, get_display(b), b.description, b.action, not enabled, tooltip or "")
            for b, enabled, tooltip in by_action.values()
        ]
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = active.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, b, enabled, _tooltip = found
                palette = KeySpec(
                    b.key,
                    get_display(b),
                    b.description,
                    b.action,
                    not enabled,
                    b.tooltip or b.description,
                )
        return keys, palette

    async def recompose(self) -> None:
        if not self.is_attached or self._pruning or not self._bindings_ready:
            return
        wanted = self._wanted()
        current = [k for k in self.children if isinstance(k, FooterKey)]
        if wanted is None or any(not isinstance(w, FooterKey) for w in self.children):
            await self._textual_recompose()
            return
        keys, palette = wanted
        shown = [k for k in current if not k.has_class(PALETTE)]
        palette_key = next((k for k in current if k.has_class(PALETTE)), None)
        if [spec_of(k) for k in shown] == keys and (
            (palette_key is None and palette is None)
            or (palette_key is not None and palette is not None and spec_of(palette_key) == palette)
        ):
            return  # the same keys: nothing to draw again
        async with self.batch():
            for widget, spec in zip(shown, keys, strict=False):
                self._assign(widget, spec)
            if len(shown) > len(keys):
                await self.remove_children(shown[len(keys) :])
            if palette_key is not None and palette is None:
                await palette_key.remove()
                palette_key = None
            elif palette_key is not None and palette is not None:
                self._assign(palette_key, palette)
            new = [self._new_key(spec) for spec in keys[len(shown) :]]
            if palette is not None and palette_key is None:
                new.append(self._new_key(palette, PALETTE))
            if new:
                await self.mount_all(new, before=palette_key)

    def _new_key(self, spec: KeySpec, classes: str = "") -> FooterKey:
        palette = classes == PALETTE
        if self.compact or palette:
            classes += " -compact"
        key = FooterKey(
            spec.key,
            spec.key_display,
            spec.description,
            spec.action,
            disabled=spec.disabled,
            tooltip=spec.tooltip,
            classes=classes,
        )
        # The footer's `compact`, once: no data binding (whose watcher would hold the key). The
        # command palette's key keeps FooterKey's own (compact), as Textual's footer leaves it.
        key.set_reactive(FooterKey.compact, True if palette else self.compact)
        return key

    @staticmethod
    def _assign(key: FooterKey, spec: KeySpec) -> None:
        old = spec_of(key)
        if old == spec:
            return
        key.key, key.key_display, key.description, key.action = spec[:4]
        key._disabled = spec.disabled
        key.set_class(spec.disabled, "-disabled")
        key.tooltip = spec.tooltip or None
        same_width = (old.key_display, old.description) == (spec.key_display, spec.description)
        key.refresh(layout=not same_width)

    async def _textual_recompose(self) -> None:
        """Textual's recompose, then the data-bind entries of keys that are gone dropped."""
        await super().recompose()
        watchers: dict[str, list[tuple[Any, Any]]] = getattr(self, "__watchers", {})
        for entries in watchers.values():
            entries[:] = [
                (node, callback)
                for node, callback in entries
                if not (getattr(node, "_closing", False) or getattr(node, "_closed", False))
                and (node is self or node.parent is not None)
            ]
