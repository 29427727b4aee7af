"""Strategy options: one pydantic model per strategy, declared next to the strategy's class.

The same model validates a config file's ``strategy:`` section, the keyword options of
:class:`~flexsync.integrations.optimizer.DistributedOptimizer`, the DDP hook's options and
a direct ``Strategy(params, optimizer, comm, **options)`` call, so a value means the same
thing everywhere and is refused with the same message everywhere.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flexsync.errors import ConfigError

Selector = Literal["adaptive", "topk", "layerwise", "randomk", "threshold"]
GainNorm = Literal["sq", "l2"]
ValueCoding = Literal["fp16", "bf16", "fp32"]


_FIELD = "\x1f"     # marks a field name inside a model-level error message (see locate)


def locate(loc: list[str], msg: str) -> tuple[list[str], str]:
    """A model-level error that names its field (``_FIELD``key``_FIELD``text) is reported at
    that field."""
    if msg.startswith(_FIELD):
        key, _, rest = msg[1:].partition(_FIELD)
        return [*loc, key], rest
    return loc, msg


def admits_bool(annotation: Any) -> bool:
    """Whether a field typed ``annotation`` may hold a bool (bool, Any, or a union with it)."""
    if annotation is bool or annotation is Any:
        return True
    return any(admits_bool(a) for a in typing.get_args(annotation))


class Strict(BaseModel):
    """Unknown keys refused, assignments and defaults validated, and no bool accepted where a
    number belongs (pydantic would read ``true`` as 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, v in data.items():
                f = cls.model_fields.get(key)
                if isinstance(v, bool) and f is not None and not admits_bool(f.annotation):
                    raise ValueError(f"{_FIELD}{key}{_FIELD}a boolean is not a number "
                                     f"(got {v!r})")
        return data


class Options(Strict):
    """Base of every strategy's options."""

    def network_aware(self) -> bool:
        """Whether the strategy's decisions (what it sends, and when) depend on the network
        conditions or on the modeled step time. A run of a strategy that is not network-aware
        sends the same messages under every network, so it can be priced under any other
        network afterwards from its per-step records (``flexsync bench quality``)."""
        return False

    @classmethod
    def parse(cls, strategy: str, given: dict[str, Any]) -> Options:
        """Validate keyword options of ``strategy``; raise :class:`ConfigError` naming each
        bad option and what it allows."""
        try:
            return cls.model_validate({**given, "name": strategy} if "name" in cls.model_fields
                                      else given)
        except ValidationError as e:
            raise ConfigError(describe(e, f"invalid options for strategy {strategy!r}",
                                       prefix="strategy.")) from None


class SparsifierOptions(Options):
    """How a sparse strategy selects (shared by every top-k-based strategy)."""

    selector: Selector = Field("adaptive", description="adaptive (exact top-k through a "
                               "threshold reused across steps; the fast default), topk (exact "
                               "torch.topk), layerwise, randomk, or threshold (sampled once per "
                               "step, DGC-style)")
    values: ValueCoding = Field("fp16", description="wire coding of the sent values: fp16, "
                                "bf16 or fp32 (the rounding error stays in error feedback)")
    gain_norm: GainNorm = Field("sq", description="compression gain from squared (paper) or "
                                "plain L2 norms")
    seed: int = Field(0, ge=0, description="seeds the selectors' generator (randomk, "
                      "threshold)")


def describe(err: ValidationError, title: str, prefix: str = "") -> str:
    """One line per problem: ``prefix.key: message (got value)``."""
    lines = []
    for e in err.errors():
        loc, msg = locate([str(p) for p in e["loc"]], e["msg"].removeprefix("Value error, "))
        key = ".".join(loc) or "(options)"
        if e["type"] == "extra_forbidden":
            msg = "unknown option"
        got = f" (got {e['input']!r})" if e["type"] != "extra_forbidden" and "input" in e \
            and not isinstance(e["input"], dict) else ""
        lines.append(f"  {prefix}{key}: {msg}{got}")
    return f"{title}:\n" + "\n".join(lines)
