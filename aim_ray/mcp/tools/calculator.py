"""The ``calculator`` tool: arithmetic evaluated by walking the ``ast``, never ``eval``."""

from __future__ import annotations

import ast
import math
import operator

from aim_ray.config.mcp_tools import CalculatorToolConfig
from aim_ray.mcp.tools.base import CalculatorArguments, Tool, ToolError, ToolOutput

_BINARY_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_MAX_MAGNITUDE = 1e308


class Calculator:
    """Evaluates arithmetic by walking the ``ast``: numbers, + - * / // % **, unary +/-,
    a few math functions and constants. Anything else is refused; nothing is ``eval``-ed."""

    def __init__(self, max_exponent: int) -> None:
        self._max_exponent = max_exponent

    def evaluate(self, expression: str) -> int | float:
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError:
            raise ToolError("not a valid arithmetic expression") from None
        try:
            return self._checked(self._eval(tree.body))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except OverflowError:
            raise ToolError("result too large") from None
        except ValueError as error:
            raise ToolError(f"math error: {error}") from None

    def _checked(self, value: int | float) -> int | float:
        if isinstance(value, float) and math.isnan(value):
            raise ToolError("result is not a number")
        if abs(value) > _MAX_MAGNITUDE:
            raise ToolError("result too large")
        return value

    def _eval(self, node: ast.AST) -> int | float:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
            return _UNARY_OPS[type(node.op)](self._eval(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
            left, right = self._eval(node.left), self._eval(node.right)
            if isinstance(node.op, ast.Pow):
                self._check_power(left, right)
            return self._checked(_BINARY_OPS[type(node.op)](left, right))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and 1 <= len(node.args) <= 2
        ):
            args = [self._eval(arg) for arg in node.args]
            if len(args) == 2 and node.func.id != "round":
                raise ToolError(f"{node.func.id}() takes one argument")
            return self._checked(_FUNCTIONS[node.func.id](*args))
        raise ToolError("only numbers, arithmetic operators and math functions are allowed")

    def _check_power(self, base: int | float, exponent: int | float) -> None:
        if abs(exponent) > self._max_exponent:
            raise ToolError(f"exponent larger than {self._max_exponent}")
        if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > 308:
            raise ToolError("result too large")


def _format_number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else format(value, ".15g")


class CalculatorTool(Tool):
    arguments = CalculatorArguments
    default_description = "Evaluate an arithmetic expression exactly; use it for any math."

    def __init__(self, config: CalculatorToolConfig) -> None:
        super().__init__(config)
        self._calculator = Calculator(config.config.max_exponent)

    async def run(self, args: CalculatorArguments) -> ToolOutput:
        value = self._calculator.evaluate(args.expression)
        return ToolOutput(text=_format_number(value), structured={"result": value})
