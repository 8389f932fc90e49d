"""`calculator`: arithmetic on an `ast` whitelist, never `eval`.

Models are poor at arithmetic and good at writing expressions, so this tool is the one
they call most. The expression is parsed with `ast`, every node is checked against a
whitelist, and sizes are bounded before they are computed (`9**9**9` would otherwise
take minutes and gigabytes).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from tools.errors import ToolExecutionError
from tools.tool import tool

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 10_000  # |b| in a ** b
MAX_INT_BITS = 4_096  # about 1,233 decimal digits
MAX_FACTORIAL = 500
MAX_DEPTH = 100  # nested operators/calls; keeps recursion far from Python's limit
_TOO_LARGE = f"the result is too large (more than {MAX_INT_BITS} bits)"

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: Any) -> int:
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or n < 0:
        raise ToolExecutionError("factorial() needs a non-negative integer")
    if n > MAX_FACTORIAL:
        raise ToolExecutionError(f"factorial() is limited to n <= {MAX_FACTORIAL}")
    return math.factorial(n)


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int) or not -20 <= ndigits <= 20:
        raise ToolExecutionError("round() takes an integer number of digits between -20 and 20")
    return round(x, ndigits)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "degrees": math.degrees,
    "radians": math.radians,
    "hypot": math.hypot,
    "floor": math.floor,
    "ceil": math.ceil,
    "gcd": math.gcd,
    "factorial": _factorial,
}


def _check_size(value: Any) -> Any:
    if isinstance(value, complex):
        raise ToolExecutionError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolExecutionError(_TOO_LARGE)
    if isinstance(value, float) and not math.isfinite(value):
        # Float arithmetic overflows to inf (1e308 * 10) and inf - inf is nan, silently:
        # a model would take "inf" for an answer.
        raise ToolExecutionError(
            "the result is not a finite number (a value overflowed a floating-point "
            "number or is undefined)"
        )
    return value


def _pow(base: Any, exponent: Any) -> Any:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolExecutionError(f"exponents are limited to ±{MAX_EXPONENT}")
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and (max(base.bit_length(), 1) - 1) * exponent > MAX_INT_BITS
    ):
        raise ToolExecutionError(_TOO_LARGE)
    return base**exponent


def _mul(a: Any, b: Any) -> Any:
    if (
        isinstance(a, int)
        and isinstance(b, int)
        and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1
    ):
        raise ToolExecutionError(_TOO_LARGE)
    return a * b


class _Evaluator:
    def __init__(self) -> None:
        self.depth = 0

    def eval(self, node: ast.AST) -> Any:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ToolExecutionError(
                f"'{_snippet(node)}' is not allowed in an arithmetic expression"
            )
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ToolExecutionError(f"the expression nests more than {MAX_DEPTH} levels deep")
        try:
            return _check_size(method(node))
        finally:
            self.depth -= 1

    def _Expression(self, node: ast.Expression) -> Any:
        return self.eval(node.body)

    def _Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolExecutionError(f"{node.value!r} is not a number")
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if node.id not in _CONSTANTS:
            known = ", ".join(_CONSTANTS)
            raise ToolExecutionError(f"unknown name '{node.id}' (constants: {known})")
        return _CONSTANTS[node.id]

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        op = _UNARY.get(type(node.op))
        if op is None:
            raise ToolExecutionError(f"operator in '{_snippet(node)}' is not supported")
        return op(self.eval(node.operand))

    def _BinOp(self, node: ast.BinOp) -> Any:
        if isinstance(node.op, ast.BitXor):
            raise ToolExecutionError("'^' is not a power operator here; use ** (2**10)")
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ToolExecutionError(f"operator in '{_snippet(node)}' is not supported")
        left, right = self.eval(node.left), self.eval(node.right)
        if op is operator.pow:
            return _pow(left, right)
        if op is operator.mul:
            return _mul(left, right)
        return op(left, right)

    def _Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            known = ", ".join(_FUNCTIONS)
            raise ToolExecutionError(f"unknown function in '{_snippet(node)}' (functions: {known})")
        if node.keywords:
            raise ToolExecutionError("keyword arguments are not supported")
        args = [self.eval(a) for a in node.args]
        try:
            return _FUNCTIONS[node.func.id](*args)
        except TypeError as exc:
            raise ToolExecutionError(f"{node.func.id}(): {exc}") from None


def _snippet(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:60]
    except Exception:
        return type(node).__name__


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; ToolExecutionError explains a refusal."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolExecutionError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    text = expression.strip()
    if not text:
        raise ToolExecutionError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        message = getattr(exc, "msg", exc)
        raise ToolExecutionError(f"not an arithmetic expression: {message}") from None
    try:
        return _Evaluator().eval(tree)
    except ZeroDivisionError:
        raise ToolExecutionError("division by zero") from None
    except OverflowError:
        raise ToolExecutionError("the result is too large for a floating-point number") from None
    except RecursionError:
        raise ToolExecutionError("the expression nests too deeply") from None
    except ValueError as exc:  # math domain errors: sqrt(-1), log(0)
        raise ToolExecutionError(f"math error: {exc}") from None


def format_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    return format(value, ".15g")


@tool(name="calculator", timeout=5.0)
def calculator(expression: Annotated[str, Field(max_length=MAX_EXPRESSION_CHARS)]) -> str:
    """Evaluate an arithmetic expression exactly and return the number.

    Written as in Python: the operators * / // % ** + - and parentheses, the constants
    pi, e and tau, and the functions sqrt, exp, log, log10, log2, sin, cos, tan, asin,
    acos, atan, atan2, sinh, cosh, tanh, degrees, radians, hypot, floor, ceil, abs,
    round, min, max, gcd and factorial.

    Args:
        expression: The expression to evaluate, copied from the question, with operators
            for words (times: *, plus: +, minus: -, divided by: /).
    """
    return format_number(evaluate(expression))
