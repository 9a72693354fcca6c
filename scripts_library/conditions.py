"""Branch conditions: a small, safe expression language over the call's data.

`when = "age >= 65 and not has_subject('vaccine:rsv')"`. Only comparisons, and/or/not, constants,
the names in NAMES and the functions in FUNCTIONS are allowed; anything else is refused at lint and
at run time (never `eval`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

NAMES = {
    "age": "the patient's age in years",
    "language": "the call's language, en or es",
    "verified": "identity passed (patient or caregiver)",
    "verified_as": "'patient', 'caregiver' or ''",
    "caregiver": "a caregiver is on record",
    "caregiver_authorized": "the caregiver on record is authorized",
    "kind": "this section's campaign kind",
    "subject": "this section's subject, e.g. vaccine:zoster",
    "sections_left": "due subjects after this one",
    "renewal": "this section's prescription has no refills left: the prescriber must renew it",
}
FUNCTIONS = {
    "answer": "answer('key'): this section's answer under key (None if not asked)",
    "has_subject": "has_subject('vaccine:zoster'): a due subject of the call matches",
    "has_kind": "has_kind('refill_reminder'): a due subject of that campaign kind",
    "has_condition": "has_condition('diabet'): a condition on record contains the words",
    "action": "action('callback'): the call has produced that follow-up action so far",
}
_OPS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: bool(a == b),
    ast.NotEq: lambda a, b: bool(a != b),
    ast.Lt: lambda a, b: bool(a < b),
    ast.LtE: lambda a, b: bool(a <= b),
    ast.Gt: lambda a, b: bool(a > b),
    ast.GtE: lambda a, b: bool(a >= b),
    ast.In: lambda a, b: bool(a in b),
    ast.NotIn: lambda a, b: bool(a not in b),
}


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Env:
    names: Mapping[str, Any]
    functions: Mapping[str, Callable[[str], Any]]


MAX_CHARS = 500  # a condition an author can read; longer ones are refused before parsing
MAX_DEPTH = 40  # nesting (not, and, or, brackets) the evaluator walks without running out of stack


def check(expr: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Problems with `expr` and the (function, argument) calls it makes, for lint."""
    if len(expr) > MAX_CHARS:
        return [f"condition {expr[:40]!r}… is longer than {MAX_CHARS} characters"], []
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        return [f"condition {expr!r} does not parse: {exc.msg}"], []
    except (RecursionError, MemoryError, ValueError):  # `not not not …` past the parser's stack
        return [f"condition {expr!r} is nested too deeply"], []
    if _depth(tree) > MAX_DEPTH:
        return [f"condition {expr!r} is nested more than {MAX_DEPTH} deep"], []
    problems: list[str] = []
    calls: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            ok = (
                isinstance(node.func, ast.Name)
                and node.func.id in FUNCTIONS
                and len(node.args) == 1
                and not node.keywords
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            )
            if not ok:
                problems.append(
                    f"condition {expr!r}: only {', '.join(FUNCTIONS)} with one quoted argument"
                )
            else:
                assert isinstance(node.func, ast.Name) and isinstance(node.args[0], ast.Constant)
                calls.append((node.func.id, str(node.args[0].value)))
        elif isinstance(node, ast.Name):
            if (
                node.id not in NAMES
                and node.id not in FUNCTIONS
                and node.id
                not in (
                    "True",
                    "False",
                    "None",
                )
            ):
                problems.append(f"condition {expr!r}: unknown name {node.id!r}")
        elif not isinstance(
            node,
            ast.Expression
            | ast.BoolOp
            | ast.And
            | ast.Or
            | ast.UnaryOp
            | ast.Not
            | ast.Compare
            | ast.Constant
            | ast.Tuple
            | ast.List
            | ast.Load
            | ast.cmpop,
        ):
            problems.append(f"condition {expr!r}: {type(node).__name__} is not allowed")
    return problems, calls


def _depth(tree: ast.AST) -> int:
    """How deep the expression nests, counted without recursion."""
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def evaluate(expr: str, env: Env) -> bool:
    problems, _ = check(expr)
    if problems:
        raise ConditionError(problems[0])
    tree = ast.parse(expr, mode="eval")
    return bool(_eval(tree.body, env))


def _eval(node: ast.expr, env: Env) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        return env.names.get(node.id)
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_eval(e, env) for e in node.elts)
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, env) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _eval(node.operand, env)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, env)
            try:
                if not _OPS[type(op)](left, right):
                    return False
            except TypeError:  # None < 5: an unanswered question satisfies no comparison
                return False
            left = right
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        arg = node.args[0]
        assert isinstance(arg, ast.Constant)
        return env.functions[node.func.id](str(arg.value))
    raise ConditionError(f"{type(node).__name__} is not allowed")
