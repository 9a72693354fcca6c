"""A bare Textual app showing the same widgets as a screen of the console (bench/next_patient.py).

The design card's memory budget compares the console with "a bare Textual app showing the same
widgets". `screen_tree` dumps a live screen — each widget's Textual base class (the first class of
Textual's own in its MRO), its console class name, id, classes, inline styles, texts, table rows,
and the footer's keys — with the stylesheet sources that are not Textual's own (the console's
`.tcss` and its widgets' DEFAULT_CSS), as plain JSON-able data. `SameWidgetsApp` rebuilds that
tree from Textual's classes only: each console widget becomes a class with no body of its own
deriving from its Textual base and named as the console's class (so the same CSS selects it and
the layout, hence what is drawn, is the same), holding the same texts and rows; the footer shows
the same keys (one no-op binding each). No console code, no ORM, no services are imported.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Widgets a Screen inserts by itself (Screen._extend_compose): the bare screen makes its own.
SCREEN_OWN = {"textual-tooltip", "textual-toastrack"}
NAME = re.compile(r"Test Build\d+")
DRAWN_NAME = re.compile(r"Build\d+")  # a name wrapped over two lines: its second half
PALETTE = "-command-palette"
BARE_MODULE = "bare"  # the module the rebuilt classes name: not Textual's, not the console's


def _plain(content: Any) -> str:
    """The text of what a widget shows (a str, a rich Text or Group, a Textual Content)."""
    renderables = getattr(content, "renderables", None)
    if renderables is not None:
        return "\n".join(_plain(r) for r in renderables)
    return str(getattr(content, "plain", content))


def _text(widget: Any, content: Any) -> tuple[str, bool]:
    """What a widget shows as text it can be given again: (text, whether it is markup)."""
    if isinstance(content, str):
        return content, bool(getattr(widget, "_render_markup", True))
    renderables = getattr(content, "renderables", None)
    if renderables is not None:  # a rich Group: its parts, line after line
        parts = [_text(widget, r) for r in renderables]
        return "\n".join(t for t, _ in parts), any(m for _, m in parts)
    markup = getattr(content, "markup", None)  # a rich Text or a Textual Content
    if isinstance(markup, str):
        return markup, True
    return _plain(content), False


def _textual_base(cls: type) -> type:
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] == "textual":
            return klass
    raise ValueError(f"{cls.__qualname__} derives from no class of Textual's")


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _node(widget: Any) -> dict[str, Any]:
    from textual.widgets import DataTable, Digits, Footer, Header, Input, Static
    from textual.widgets._footer import FooterKey

    base = _textual_base(type(widget))
    node: dict[str, Any] = {
        "type": type(widget).__name__,
        "base": _path(base),
        "can_focus": bool(type(widget).can_focus),
        "id": widget.id,
        "classes": sorted(widget.classes),
        "inline": widget.styles.inline.css if widget.styles.inline.get_rules() else "",
        "border_title": _plain(widget.border_title) if widget.border_title else "",
        "border_subtitle": _plain(widget.border_subtitle) if widget.border_subtitle else "",
        "children": [],
    }
    if isinstance(widget, Static):
        node["text"], node["markup"] = _text(widget, widget.content)
    elif isinstance(widget, Digits):
        node["text"] = widget.value
    elif isinstance(widget, Input):
        node["text"], node["placeholder"] = widget.value, widget.placeholder
    elif isinstance(widget, DataTable):
        node["columns"] = [
            [_plain(c.label), None if c.auto_width else c.width] for c in widget.columns.values()
        ]
        node["rows"] = [
            [_plain(cell) for cell in widget.get_row_at(r)] for r in range(widget.row_count)
        ]
        node["cursor_type"], node["zebra"] = widget.cursor_type, widget.zebra_stripes
        node["show_cursor"] = widget.show_cursor
    elif isinstance(widget, Header):
        node["show_clock"] = widget._show_clock if hasattr(widget, "_show_clock") else False
    elif isinstance(widget, Footer):
        node["compact"] = widget.compact
        node["keys"] = [
            {
                "key": k.key,
                "key_display": k.key_display,
                "description": k.description,
                "disabled": bool(k._disabled),
                "tooltip": k.tooltip if isinstance(k.tooltip, str) else "",
            }
            for k in widget.children
            if isinstance(k, FooterKey) and not k.has_class(PALETTE)
        ]
        node["palette"] = any(k.has_class(PALETTE) for k in widget.children)
    for child in widget.children:
        if child.id not in SCREEN_OWN:
            node["children"].append(_node(child))
    return node


def screen_tree(app: Any, screen: Any) -> dict[str, Any]:
    """The screen as data (see the module's docstring), and the console's stylesheet sources."""
    import textual

    own = str(Path(textual.__file__).parent)
    sheets = [
        [path, var, src.content, src.is_defaults, src.tie_breaker, src.scope]
        for (path, var), src in app.stylesheet.source.items()
        if not path.startswith(own)
    ]
    tree = _node(screen)
    return {
        "screen": tree,
        "title": _plain(app.title),
        "sub_title": _plain(app.sub_title),
        "screen_title": _plain(screen.title) if screen.title else None,
        "screen_sub_title": _plain(screen.sub_title) if screen.sub_title else None,
        "stylesheets": sheets,
        "widgets": count(tree),
        "drawn": drawn_lines(screen),
        "by_base": by_base(tree),
    }


def drawn_lines(screen: Any) -> list[str]:
    """The screen as last composed, as text lines, patients' names as one (to compare)."""
    strips = screen._compositor.render_strips()
    return [DRAWN_NAME.sub("Build#", "".join(seg.text for seg in strip)) for strip in strips]


def count(node: dict[str, Any]) -> int:
    """Widgets in a dumped tree, the screen included."""
    return 1 + sum(count(c) for c in node["children"])


def by_base(node: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}

    def walk(n: dict[str, Any]) -> None:
        name = n["base"].rsplit(".", 1)[-1]
        counts[name] = counts.get(name, 0) + 1
        for c in n["children"]:
            walk(c)

    walk(node)
    return dict(sorted(counts.items()))


def live_tree_counts(screen: Any) -> tuple[int, dict[str, int]]:
    """A live screen's widgets (without those the Screen makes itself), by Textual base."""
    counts: dict[str, int] = {}
    total = 0

    def walk(widget: Any) -> None:
        nonlocal total
        total += 1
        name = _textual_base(type(widget)).__name__
        counts[name] = counts.get(name, 0) + 1
        for child in widget.children:
            if child.id not in SCREEN_OWN:
                walk(child)

    walk(screen)
    return total, dict(sorted(counts.items()))


# ---------------------------------------------------------------------------------------------
# The rebuild: Textual's classes only


def _textual_class(path: str) -> Any:
    module, _, name = path.rpartition(".")
    if module.split(".")[0] != "textual":
        raise ValueError(f"not a class of Textual's: {path}")
    return getattr(importlib.import_module(module), name)


class _Kinds:
    """Each console class as a class of no body of its own on its Textual base, under the
    console's name (the console's CSS selects widgets by type name); and each widget built with
    the node it was built from, for the redraws."""

    def __init__(self) -> None:
        self.made: dict[tuple[str, str, bool], type] = {}
        self.built: list[tuple[dict[str, Any], Any]] = []

    def of(self, node: dict[str, Any], body: dict[str, Any] | None = None) -> Any:
        base = _textual_class(node["base"])
        same_focus = bool(base.can_focus) == node["can_focus"]
        if body is None and node["type"] == base.__name__ and same_focus:
            return base
        key = (node["type"], node["base"], node["can_focus"])
        if body is not None or key not in self.made:
            namespace = {"__module__": BARE_MODULE, **(body or {})}
            made = type(node["type"], (base,), namespace, can_focus=node["can_focus"])
            if body is not None:
                return made
            self.made[key] = made
        return self.made[key]


def _own_children(cls: type) -> bool:
    """Whether Textual's class composes children of its own (Header, Footer): then those are
    made by it, not rebuilt from the dump."""
    from textual.widget import Widget

    return getattr(cls, "compose", None) is not Widget.compose


def build(node: dict[str, Any], kinds: _Kinds) -> Any:
    from textual.widgets import DataTable, Digits, Footer, Header, Input, Static

    cls: Any = kinds.of(node)
    widget: Any
    named = {"id": node["id"], "classes": " ".join(node["classes"]) or None}
    if issubclass(cls, Static):
        widget = cls(node["text"], markup=node["markup"], **named)
    elif issubclass(cls, Digits):
        widget = cls(node["text"], **named)
    elif issubclass(cls, Input):
        widget = cls(value=node["text"], placeholder=node["placeholder"], **named)
    elif issubclass(cls, DataTable):
        widget = cls(
            zebra_stripes=node["zebra"],
            cursor_type=node["cursor_type"],
            show_cursor=node["show_cursor"],
            **named,
        )
        for label, width in node["columns"]:
            widget.add_column(label, width=width)
        for row in node["rows"]:
            widget.add_row(*row)
    elif issubclass(cls, Header):
        widget = cls(show_clock=node["show_clock"], **named)
    elif issubclass(cls, Footer):
        widget = cls(compact=node["compact"], show_command_palette=node["palette"], **named)
    elif _own_children(cls):
        widget = cls(**named)
    else:
        widget = cls(*(build(c, kinds) for c in node["children"]), **named)
    if node["inline"]:
        widget.set_styles(node["inline"])
    if node["border_title"]:
        widget.border_title = node["border_title"]
    if node["border_subtitle"]:
        widget.border_subtitle = node["border_subtitle"]
    kinds.built.append((node, widget))
    return widget


def _at(text: str, redraw: int) -> str:
    """A text of the last patient's screen under the redraw's patient name (as many digits as
    the name it replaces, so that it is drawn in the same cells)."""
    return NAME.sub(
        lambda m: f"Test Build{redraw % 10 ** (len(m[0]) - 10):0{len(m[0]) - 10}d}", text
    )


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node["children"]:
        yield from walk(child)


def same_widgets_app(tree: dict[str, Any]) -> Any:
    """A Textual app whose screen is the dumped one (Textual's classes only); its `redraw(n)`
    sets every text and table row again, under patient n's name."""
    from textual.app import App
    from textual.binding import Binding
    from textual.widgets import DataTable, Digits, Input, Static

    kinds = _Kinds()
    screen_node = tree["screen"]
    footers = [n for n in walk(screen_node) if "keys" in n]
    keys = footers[0]["keys"] if footers else []
    disabled = {f"bare_key_{i}" for i, k in enumerate(keys) if k["disabled"]}

    def check_action(_screen: Any, action: str, _parameters: tuple[object, ...]) -> bool | None:
        return None if action in disabled else True

    def compose(_screen: Any) -> Iterator[Any]:
        for child in screen_node["children"]:
            yield build(child, kinds)

    same_screen = kinds.of(
        screen_node,
        {
            "BINDINGS": [
                Binding(
                    k["key"],
                    f"bare_key_{i}",
                    k["description"],
                    key_display=k["key_display"],
                    tooltip=k["tooltip"],
                )
                for i, k in enumerate(keys)
            ],
            "check_action": check_action,
            "compose": compose,
        },
    )

    class SameWidgetsApp(App[None]):
        TITLE = tree["title"]
        SUB_TITLE = tree["sub_title"]

        def __init__(self) -> None:
            super().__init__()
            for path, var, content, is_defaults, tie_breaker, scope in tree["stylesheets"]:
                self.stylesheet.add_source(
                    content,
                    read_from=(path, var),
                    is_default_css=is_defaults,
                    tie_breaker=tie_breaker,
                    scope=scope,
                )

        def on_mount(self) -> None:
            classes = " ".join(screen_node["classes"]) or None
            screen = same_screen(id=screen_node["id"], classes=classes)
            if tree["screen_title"] is not None:
                screen.title = tree["screen_title"]
            if tree["screen_sub_title"] is not None:
                screen.sub_title = tree["screen_sub_title"]
            self.push_screen(screen)

        def redraw(self, n: int) -> None:
            """Every text and table row of the dumped screen set again (patient n's name)."""
            for node, widget in kinds.built:
                if isinstance(widget, Static):
                    widget.update(_at(node["text"], n))
                elif isinstance(widget, Digits):
                    widget.update(node["text"])
                elif isinstance(widget, Input):
                    widget.value = node["text"]
                elif isinstance(widget, DataTable):
                    widget.clear()
                    for row in node["rows"]:
                        widget.add_row(*(_at(cell, n) for cell in row))

    return SameWidgetsApp()


# ---------------------------------------------------------------------------------------------
# The bare app's own process: `python bench/_same_widgets.py TREE.json --redraws P [--store URL]`


def rss_mb() -> float:
    """This process's resident set now (/proc/self/statm), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def measure(tree: dict[str, Any], redraws: int, store_url: str | None = None) -> dict[str, Any]:
    """The same-widgets app at 120x40 after `redraws` redraws: its RSS and its widgets; with
    `store_url`, each redraw also reads its patient through SQLAlchemy's ORM from the product's
    tables (the persistence every implementation on the design card's stack pays)."""
    read = None
    if store_url:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from sqlalchemy import create_engine, select
        from sqlalchemy.orm import Session

        from queues.store.models import Patient

        store = create_engine(store_url)

        def read(n: int) -> object:
            with Session(store) as session:
                return session.scalars(select(Patient).where(Patient.id == n + 1)).first()

    async def run() -> dict[str, Any]:
        app = same_widgets_app(tree)
        async with app.run_test(size=(120, 40)) as pilot:
            while type(app.screen).__name__ != tree["screen"]["type"]:
                await pilot.pause()
            await pilot.pause()
            for n in range(redraws):
                if read is not None:
                    read(n)
                app.redraw(n)
                await pilot.pause()
            rss = rss_mb()
            widgets, bases = live_tree_counts(app.screen)
            drawn = drawn_lines(app.screen)
            pairs = list(zip(tree["drawn"], drawn, strict=False))
            differ = [pair for pair in pairs if pair[0] != pair[1]]
            return {
                "rss_mb": rss,
                "widgets": widgets,
                "by_base": bases,
                "lines_differ": len(differ) + abs(len(drawn) - len(tree["drawn"])),
                "first_differ": [line.rstrip() for line in differ[0]] if differ else None,
            }

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path, help="a screen dumped by screen_tree, as JSON")
    parser.add_argument("--redraws", type=int, required=True)
    parser.add_argument("--store", default=None, metavar="URL")
    args = parser.parse_args()
    tree = json.loads(args.tree.read_text())
    print(json.dumps(measure(tree, args.redraws, args.store)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
