"""Quantization recipes: which precision each layer of a model gets.

Three kinds, all named by one string so that a recipe can be written on a command line
and recorded next to the quant it built:

* uniform: every quantizable layer at `--bits` and `--group-size` (the model's own
  predicate still applies, e.g. LFM2-MoE keeps its router gates at 8 bits), exactly
  as `mlx_lm.convert -q` does;
* mlx-lm's mixed recipes (`mixed_3_6`, ...): llama.cpp Q4_K_M-like choices, built by
  `mlx_lm.convert.mixed_quant_predicate_builder` itself;
* per-role specs in the style of the "qx" model cards: `qx86-hi` puts attention,
  embeddings, head and router at 8 bits and the feed-forward (experts, dense MLP,
  short-conv projections) at 6, with group size 32 ("hi"); or spelled out,
  `attention=8,embeddings=8,head=8,experts=6,default=4,group=32`.

This module is pure Python (no MLX): the CLI checks a recipe before loading anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from agent.errors import UserError

BITS: tuple[int, ...] = (2, 3, 4, 5, 6, 8)  # what MLX's affine quantization packs
UNIFORM_BITS: tuple[int, ...] = (3, 4, 5, 6, 8)  # what `--bits` offers
GROUP_SIZES: tuple[int, ...] = (32, 64, 128)
# mlx_lm.convert.QUANT_RECIPES, listed here so that `--help` needs no mlx-lm import
# (tests/test_quant.py checks the two lists agree).
MLX_LM_RECIPES: tuple[str, ...] = ("mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6")
ROLES: tuple[str, ...] = (
    "embeddings",
    "head",
    "attention",
    "router",
    "experts",
    "mlp",
    "conv",
    "default",
)
# The qx cards' split: what is sensitive (first digit) and the bulk of the weights.
QX_HIGH_ROLES: tuple[str, ...] = ("embeddings", "head", "attention", "router")
_QX = re.compile(r"qx([2-8])([2-8])(-hi)?")

# A layer's precision: (bits, group size), or None to keep it unquantized.
Precision = tuple[int, int] | None
Predicate = Callable[[str, Any], "bool | dict[str, Any]"]


def role_of(path: str) -> str:
    """The role of the layer at module path `path` (names of mlx-lm's model files)."""
    parts = path.lower().split(".")
    last = parts[-1] if parts else ""
    if any("embed" in p or p in ("wte", "tok_embeddings") for p in parts):
        return "embeddings"
    if last in ("lm_head", "output"):
        return "head"
    if last in ("gate", "router"):
        return "router"  # MoE routers (a dense MLP's gate is gate_proj or w1)
    if any(p in ("switch_mlp", "experts") for p in parts):
        return "experts"
    if any(p in ("self_attn", "attn", "attention", "self_attention") for p in parts):
        return "attention"
    if "conv" in parts:
        return "conv"
    if any(p in ("mlp", "feed_forward", "ffn", "shared_expert", "shared_experts") for p in parts):
        return "mlp"
    return "default"


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe. `kind` is "uniform", "mlx-lm" or "roles"."""

    name: str
    kind: str
    bits: int
    group_size: int
    roles: dict[str, Precision] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "uniform":
            return f"{self.bits}-bit, group size {self.group_size}"
        if self.kind == "mlx-lm":
            return f"mlx-lm recipe {self.name}, group size {self.group_size}"
        parts = [
            f"{role} {'full precision' if p is None else f'{p[0]}-bit/{p[1]}'}"
            for role, p in self.roles.items()
        ]
        return f"{self.name}: " + ", ".join(parts)

    def precision(self, role: str) -> Precision:
        """A role's precision in a per-role recipe ("default" for the roles not named)."""
        return self.roles.get(role, self.roles.get("default", (self.bits, self.group_size)))

    def predicate(self, model: Any) -> Predicate | None:
        """The predicate for mlx_lm.utils.quantize_model (None: the model's own)."""
        if self.kind == "uniform":
            return None
        if self.kind == "mlx-lm":
            from mlx_lm.convert import mixed_quant_predicate_builder

            try:
                # Annotated with a third argument the predicate does not take.
                return cast(
                    Predicate, mixed_quant_predicate_builder(self.name, model, self.group_size)
                )
            except ValueError as exc:
                raise UserError(f"recipe {self.name} does not fit this model: {exc}") from None
        own: Predicate | None = getattr(model, "quant_predicate", None)
        named = set(self.roles)

        def by_role(path: str, module: Any) -> bool | dict[str, Any]:
            role = role_of(path)
            precision = self.precision(role)
            if own is not None:
                # The model's own wishes: layers it never quantizes, and layers it wants
                # more precise than the recipe would make them (LFM2-MoE's 8-bit routers).
                verdict = own(path, module)
                if verdict is False:
                    return False
                if isinstance(verdict, dict) and (
                    role not in named or precision is None or verdict["bits"] > precision[0]
                ):
                    if precision is None:
                        return False
                    return {"mode": "affine", **verdict}
            if precision is None:
                return False
            bits, group_size = precision
            return {"group_size": group_size, "bits": bits, "mode": "affine"}

        return by_role


def parse_recipe(recipe: str | None, bits: int, group_size: int) -> Recipe:
    """`--recipe` (with `--bits` and `--group-size` as defaults) as a `Recipe`, or a
    one-line UserError saying what recipes look like."""
    if bits not in BITS:
        raise UserError(f"--bits must be one of {', '.join(map(str, UNIFORM_BITS))}, got {bits}")
    if group_size not in GROUP_SIZES:
        raise UserError(
            f"--group-size must be one of {', '.join(map(str, GROUP_SIZES))}, got {group_size}"
        )
    if recipe is None or recipe == "uniform":
        return Recipe(f"{bits}bit-g{group_size}", "uniform", bits, group_size)
    text = recipe.strip()
    if text in MLX_LM_RECIPES:
        # The config's default precision: the recipe's low bits (every layer is listed).
        return Recipe(text, "mlx-lm", int(text.split("_")[1]), group_size)
    qx = _QX.fullmatch(text)
    if qx:
        high, low = int(qx.group(1)), int(qx.group(2))
        for b in (high, low):
            if b not in BITS:
                raise UserError(f"recipe {text}: {b} bits is not one of {_bits_text()}")
        gs = 32 if qx.group(3) else group_size
        roles: dict[str, Precision] = {role: (high, gs) for role in QX_HIGH_ROLES}
        roles["default"] = (low, gs)
        return Recipe(text, "roles", low, gs, roles)
    if "=" in text:
        return _parse_roles(text, bits, group_size)
    raise UserError(f"unknown recipe '{recipe}': {recipe_help()}")


def _parse_roles(text: str, bits: int, group_size: int) -> Recipe:
    entries: list[tuple[str, str]] = []
    for item in text.split(","):
        role, sep, value = item.strip().partition("=")
        role, value = role.strip().lower(), value.strip().lower()
        if not sep or not role or not value:
            raise UserError(f"recipe '{text}': '{item.strip()}' is not ROLE=BITS[/GROUP]")
        entries.append((role, value))
    group = next((v for r, v in entries if r in ("group", "group_size")), None)
    if group is not None:
        group_size = _number(group, GROUP_SIZES, f"recipe '{text}': group")
    roles: dict[str, Precision] = {}
    for role, value in entries:
        if role in ("group", "group_size"):
            continue
        if role not in ROLES:
            raise UserError(
                f"recipe '{text}': unknown role '{role}'; roles are {', '.join(ROLES)} "
                "(and group=32|64|128)"
            )
        if value in ("off", "none", "full"):
            roles[role] = None
            continue
        b, _, g = value.partition("/")
        roles[role] = (
            _number(b, BITS, f"recipe '{text}': {role} bits"),
            _number(g, GROUP_SIZES, f"recipe '{text}': {role} group") if g else group_size,
        )
    roles.setdefault("default", (bits, group_size))
    default = roles["default"]
    return Recipe(
        text,
        "roles",
        default[0] if default else bits,
        default[1] if default else group_size,
        roles,
    )


def _number(text: str, allowed: tuple[int, ...], what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value not in allowed:
        raise UserError(f"{what} must be one of {', '.join(map(str, allowed))}, got '{text}'")
    return value


def _bits_text() -> str:
    return ", ".join(map(str, BITS))


def recipe_help() -> str:
    return (
        f"one of {', '.join(MLX_LM_RECIPES)} (mlx-lm's mixed recipes), qxAB[-hi] (attention, "
        "embeddings, head and router at A bits, the rest at B; -hi: group size 32, e.g. "
        f"qx86-hi), or ROLE=BITS[/GROUP],... with roles {', '.join(ROLES)} and group=32|64|128 "
        "(e.g. attention=8,experts=6,default=4,group=32)"
    )
