"""The run configuration: YAML in, validated dataclasses out.

Every key has a visible default (``flexsync run --print-config``), unknown keys and bad values
are rejected with a message that names the key, and every key can be overridden from the
command line with ``--set dotted.key=value`` (the value is parsed as YAML).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from flexsync.data import DATASETS, LANGUAGE_DATASETS
from flexsync.errors import ConfigError
from flexsync.models import MODEL_SIZES, MODELS
from flexsync.net.units import parse_bandwidth, parse_duration
from flexsync.strategies import PEERS, STRATEGIES
from flexsync.strategies.options import _FIELD, Strict, locate
from flexsync.workloads import defaults_for as workload_defaults


class _Strict(Strict):
    """Config sections: :class:`Strict`, and no NaN or infinity in any number (``.inf``
    epochs or timeouts would only fail inside the workers)."""

    model_config = ConfigDict(allow_inf_nan=False)


def _with_unit(parse):
    """A parser that refuses a bare non-zero number: ``network.alpha: 5`` could mean 5 s or
    5 ms, ``bandwidth: 100`` 100 bytes/s or 100 Mbit/s; the unit must be written."""
    def check(value: Any) -> float:
        bare = isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(value, str):
            try:
                float(value)
                bare = True
            except ValueError:
                pass
        if bare and float(value) != 0:
            example = "'5ms' or '5s'" if parse is parse_duration else "'100mbit' or '25MB/s'"
            raise ValueError(f"{value!r} has no unit; write it with one, e.g. {example}")
        return parse(value)
    return check


# Validated into SI numbers: seconds and bytes per second ("1ms" -> 0.001, "100mbit" -> 1.25e7),
# and written back with their units (config.yaml of a run loads back to the same values).
Duration = Annotated[float, BeforeValidator(_with_unit(parse_duration)),
                     PlainSerializer(lambda v: f"{v!r}s", return_type=str, when_used="json")]
Bandwidth = Annotated[float, BeforeValidator(_with_unit(parse_bandwidth)),
                      PlainSerializer(lambda v: f"{v!r}B/s", return_type=str,
                                      when_used="json")]


# -- network ------------------------------------------------------------------------------------
class _NetBase(_Strict):
    model_params: float | None = Field(
        None, gt=0, description="price communication as if the model had this many parameters"
    )


class ModeledNetwork(_NetBase):
    kind: Literal["modeled"] = "modeled"
    alpha: Duration = "1ms"
    bandwidth: Bandwidth = "100mbit"


class PhaseConfig(_Strict):
    start: float = Field(ge=0)
    alpha: Duration
    bandwidth: Bandwidth


class ScheduleNetwork(_NetBase):
    kind: Literal["schedule"]
    preset: Literal["C1", "C2"] | None = None
    stretch: float = Field(1.0, gt=0)
    unit: Literal["step", "epoch", "time"] = "epoch"
    phases: list[PhaseConfig] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ScheduleNetwork:
        if (self.preset is None) == (self.phases is None):
            raise ValueError("a schedule needs exactly one of 'preset' (C1, C2) or 'phases'")
        return self


class LoopbackNetwork(_NetBase):
    kind: Literal["loopback"]


class EmulatedNetworkConfig(_NetBase):
    """Real shaped links: one network namespace per worker, tbf on each uplink (needs root),
    plus an optional per-message ``delay``. With ``estimate`` the network conditions every
    strategy sees are fitted live from the run's own collective timings; otherwise the
    configured bandwidth and delay are used."""

    kind: Literal["emulated"]
    bandwidth: Bandwidth = Field("100mbit", description="at least 64kbit: slower links "
                                 "cannot carry gloo's connection set-up in time")
    delay: Duration = Field(0.0, description="per-message latency α, added by each worker's "
                            "communicator (the kernel has no netem)")
    estimate: bool = True

    @field_validator("bandwidth")
    @classmethod
    def _fast_enough(cls, v: float) -> float:
        if v < 8000:
            raise ValueError(f"an emulated link needs at least 64kbit (8000 B/s), got "
                             f"{v * 8:g} bit/s")
        return v


Network = Annotated[
    ModeledNetwork | ScheduleNetwork | LoopbackNetwork | EmulatedNetworkConfig,
    Field(discriminator="kind"),
]


# -- strategies: each strategy module declares its own options model -------------------------
StrategyConfig = Annotated[
    Union[tuple(cls.Options for cls in (*STRATEGIES.values(), *PEERS.values()))],  # noqa: UP007
    Field(discriminator="name"),
]


# -- everything else ----------------------------------------------------------------------------
class StreamConfig(_Strict):
    """Per-device sample streams (docs/methods.md §4.1, §4.3); any strategy can train on them.
    ``batch: auto`` means b_i = clamp(S_i·τ, b_min, b_max) for scadles and auto (the
    strategies that weight by batch) and ``batch_size`` for every other strategy."""

    rates: Literal["S1", "S2", "S1-normal", "S2-normal"] | list[Annotated[float, Field(
        gt=0, le=1e9)]] = "S1"
    policy: Literal["persistence", "truncation"] = "truncation"
    batch: Literal["auto", "fixed", "rate"] = "auto"
    tau: float = Field(1.0, gt=0, le=1e6)
    b_min: int = Field(8, ge=1)
    b_max: int = Field(1024, ge=1)
    drift: float = Field(0.0, ge=0, lt=1, description="± fraction of rate jitter")
    drift_every: int = Field(0, ge=0)
    sleep: bool = Field(False, description="really sleep the wait time (wall clock)")
    clock: Literal["modeled", "wall"] = Field(
        "modeled", description="streams advance by the modeled or the wall step duration")
    seed: int | None = Field(None, ge=0, description="rate draw seed; null = run seed")

    @model_validator(mode="after")
    def _check(self) -> StreamConfig:
        if self.b_min > self.b_max:
            raise ValueError(f"b_min ({self.b_min}) must not exceed b_max ({self.b_max})")
        if isinstance(self.rates, list) and (not self.rates or min(self.rates) <= 0):
            raise ValueError("stream.rates must be a preset or a non-empty list of rates > 0")
        return self


class InjectionConfig(_Strict):
    """Data injection (docs/methods.md §2.4, §4.5): α = fraction of senders (or peers), β =
    fraction of the own batch shared; ``shrink_batch`` uses b′ = b / (1 + α·β·N)."""

    alpha: float = Field(0.5, ge=0, le=1)
    beta: float = Field(0.5, ge=0, le=1)
    mode: Literal["sender_selection", "receiver_choice"] = "sender_selection"
    shrink_batch: bool = True


class DataConfig(_Strict):
    """How the training set is split over workers (``partition``: defdp, seldp §2.3, noniid
    §2.4; ``injection``), and the options of the synthetic generators (ignored by the bundled
    datasets)."""

    partition: Literal["defdp", "seldp", "noniid"] = "defdp"
    seldp_mode: Literal["rotate", "permute"] = "rotate"
    labels_per_worker: int | None = Field(None, ge=1, description="noniid; null: ~C/N")
    injection: InjectionConfig | None = None
    classes: int = Field(100, ge=2)
    prototypes: int = Field(3, ge=1)
    noise: float = Field(0.8, ge=0)
    train_size: int = Field(20000, ge=1)
    test_size: int = Field(4000, ge=1)
    image_size: int = Field(16, ge=4)
    difficulty: Literal["easy", "hard"] = Field(
        "hard", description="synthetic-images-hard: the preset of class overlap, noise and "
        "variation (data/hard_images.py)")
    vocab: int = Field(1000, ge=2)
    train_tokens: int = Field(200_000, ge=100)
    test_tokens: int = Field(20_000, ge=100)
    seq_len: int | None = Field(None, ge=2, description="tokens per window; null: 35 for "
                                "synthetic-text, 128 for stdlib-text")
    max_train_bytes: int | None = Field(None, ge=1000, description="stdlib-text: cap the "
                                        "training corpus (a deterministic prefix)")
    max_val_bytes: int | None = Field(None, ge=1000, description="stdlib-text: cap validation")
    val_offset_bytes: int | None = Field(
        None, ge=1, description="stdlib-text: skip this many bytes of the held-out stream "
        "before the cap (a second held-out split, disjoint from the default test bytes, for "
        "choosing settings)")

    def options_for(self, dataset: str) -> dict[str, Any]:
        keys: tuple[str, ...] = ()
        if dataset == "synthetic-images":
            keys = ("classes", "prototypes", "noise", "train_size", "test_size", "image_size")
        elif dataset == "synthetic-images-hard":
            keys = ("difficulty", "train_size", "test_size", "image_size")
        elif dataset == "synthetic-text":
            keys = ("vocab", "train_tokens", "test_tokens", "seq_len")
        elif dataset == "stdlib-text":
            keys = ("seq_len", "max_train_bytes", "max_val_bytes", "val_offset_bytes")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class OptimizerConfig(_Strict):
    """The local optimizer every strategy steps, and its learning-rate schedule:
    ``constant``, or ``cosine`` decay to 0 over the run's steps; either after a linear
    warm-up of ``warmup_steps``."""

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.01, gt=0, le=1e3, description="at most 1e3: larger rates overflow "
                      "float32 parameters on the first step")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1e3)
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)


class ClockConfig(_Strict):
    """How compute time enters the virtual clock: ``measured`` CPU time of the worker's own
    thread (unaffected by other workers sharing the cores), or ``model``: t0 + t1·batch."""

    compute: Literal["measured", "model"] = "measured"
    t0: Duration = 0.0
    t1: Duration = "0.5ms"


class TargetConfig(_Strict):
    accuracy: float | None = Field(None, gt=0, le=1)
    perplexity: float | None = Field(None, gt=1)


class EvalConfig(_Strict):
    every: int = Field(50, ge=1, description="evaluate on the test set every N steps")
    batch_size: int = Field(1000, ge=1)


class CheckpointConfig(_Strict):
    every: int | None = Field(None, ge=1, description="save every N steps (and at the end)")
    keep: int = Field(2, ge=1, description="how many recent checkpoints to keep")


class LoggingConfig(_Strict):
    """Where a run reports besides ``metrics.jsonl``."""

    tensorboard: str | None = Field(
        None, description="also write TensorBoard event files (every numeric metric of each "
        "step: loss, bytes, modeled time, the strategy's signals) to this directory")
    progress_every_s: float = Field(
        30.0, gt=0, description="without a terminal, print a progress line this often")


#: The most memory a dataset may need (bytes, estimated from its options) before a run is
#: refused: beyond it the workers would be killed for memory, or the machine would swap.
MAX_DATA_BYTES = 4e9


def data_bytes(cfg: Config) -> float:
    """Roughly what ``cfg``'s built-in dataset takes in memory (float32 images, int64 tokens,
    with the generators' temporaries): 0 for the bundled datasets, which are small."""
    d = cfg.data
    if cfg.dataset in ("synthetic-images", "synthetic-images-hard"):
        return 2.0 * (d.train_size + d.test_size) * 3 * d.image_size ** 2 * 4
    if cfg.dataset == "synthetic-text":
        return 4.0 * (d.train_tokens + d.test_tokens) * 8
    return 0.0


def check_out(out: str) -> str:
    """``out`` must name a directory of its own: not an existing file (``/dev/null``), not the
    file-system root, the current directory or one of its parents (``.``, ``../..``)."""
    if not out.strip() or "\0" in out:
        raise ValueError(f"{out!r} is not a usable directory name")
    try:
        cwd = Path(os.getcwd()).resolve()
    except OSError:              # the working directory was removed: nothing to compare
        return out
    resolved = (cwd / Path(out).expanduser()).resolve()
    if resolved.exists() and not resolved.is_dir():
        raise ValueError(f"{out!r} exists and is not a directory; give a directory for the "
                         "run's files")
    if resolved == cwd or resolved in cwd.parents:
        raise ValueError(f"{out!r} resolves to {resolved}, the current directory or one of "
                         "its parents; give a directory of its own, e.g. runs/NAME")
    return out


class Config(_Strict):
    workers: int = Field(4, ge=1, le=256)
    steps: int | None = Field(None, ge=1, le=10**9)
    epochs: float | None = Field(None, gt=0, le=1e6)
    seed: int = Field(0, ge=0)
    dataset: Literal[DATASETS] = "synthetic-images"
    data: DataConfig = DataConfig()
    model: Literal[MODELS] = "cnn"
    model_size: Literal[MODEL_SIZES] = Field("xs", description="transformer preset: xs ≈ 1 M, "
                                             "s, m, l ≈ 25 M parameters")
    batch_size: int = Field(32, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    strategy: StrategyConfig = Field(default_factory=lambda: STRATEGIES["dense"].Options())
    network: Network = ModeledNetwork()
    stream: StreamConfig | None = None
    clock: ClockConfig = ClockConfig()
    target: TargetConfig = TargetConfig()
    eval: EvalConfig = EvalConfig()
    out: str = "runs/run"
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    timeout_s: float = Field(300, ge=1, le=1e7,
                             description="a collective waiting longer fails the run")
    stall_timeout_s: float = Field(
        20, ge=0, le=1e7, description="a rank whose heartbeat stops, or that is stuck behind "
        "its peers, this long is named and the run stopped (0: off); independent of timeout_s")
    checkpoint: CheckpointConfig = CheckpointConfig()
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="non-finite gradients on any rank: stop the run, or skip the step")
    progress: bool = True
    logging: LoggingConfig = LoggingConfig()

    @field_validator("out")
    @classmethod
    def _out(cls, v: str) -> str:
        return check_out(v)

    @model_validator(mode="after")
    def _check(self) -> Config:
        if self.network.kind == "emulated" and self.workers > 250:
            raise ValueError(f"{_FIELD}workers{_FIELD}network kind 'emulated' supports at "
                             f"most 250 workers (one address each in a /24), got "
                             f"{self.workers}")
        if data_bytes(self) > MAX_DATA_BYTES:
            raise ValueError(
                f"{_FIELD}data{_FIELD}dataset {self.dataset!r} with these data options needs "
                f"about "
                f"{data_bytes(self) / 1e9:.0f} GB of memory (at most {MAX_DATA_BYTES / 1e9:.0f}"
                " GB): lower data.train_size/test_size/image_size or data.train_tokens")
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give either 'steps' or 'epochs', not both")
        if self.steps is None and self.epochs is None:
            self.steps = 300
        text = self.dataset in LANGUAGE_DATASETS
        if text != (self.model in ("lstm", "transformer")):
            raise ValueError(
                f"model {self.model!r} does not fit dataset {self.dataset!r}: use 'lstm' or "
                f"'transformer' with {' or '.join(LANGUAGE_DATASETS)}, and 'cnn' or 'resnet' "
                "with images"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def model_options(self) -> dict[str, Any]:
        """Keyword options of the built-in model (the transformer's size preset)."""
        return {"preset": self.model_size} if self.model == "transformer" else {}


# -- loading ------------------------------------------------------------------------------------
_TAGGED = {"strategy": "name", "network": "kind"}


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        # Discriminated unions put the tag into the path ("network.schedule.preset"): drop it.
        if len(loc) >= 2 and loc[0] in _TAGGED and e["type"] != "union_tag_invalid":
            del loc[1]
        loc, msg = locate(loc, e["msg"].removeprefix("Value error, "))
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "union_tag_invalid":
            loc.append(_TAGGED[loc[0]])
            msg = (f"unknown value {e['ctx']['tag']!r}; expected one of "
                   f"{e['ctx']['expected_tags']}")
        key = ".".join(loc) or "(top level)"
        lines.append(f"  {key}: {msg}")
    return "invalid configuration:\n" + "\n".join(lines)


def _merge(base: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``user`` onto ``base``. A tagged section whose tag changes (another strategy
    name or network kind) is replaced whole, so one method's options never leak into another's."""
    out = dict(base)
    for key, value in user.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            tag = _TAGGED.get(key)
            if tag and tag in value and value[tag] != old.get(tag):
                out[key] = value
            else:
                out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


def set_dotted(tree: dict[str, Any], assignment: str) -> None:
    """Apply one ``a.b.c=value`` override (value parsed as YAML) to a nested dict."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set has an empty key segment in {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {e}") from None
    node = tree
    for p in parts[:-1]:
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"--set {key}: '{p}' is not a section")
        node = child
    node[parts[-1]] = value


def _shorthand(tree: dict[str, Any]) -> dict[str, Any]:
    """``strategy: dense`` means ``{name: dense}``; ``network: loopback`` means ``{kind: …}``."""
    tree = dict(tree)
    for key, tag in _TAGGED.items():
        if isinstance(tree.get(key), str):
            tree[key] = {tag: tree[key]}
    return tree


def defaults() -> dict[str, Any]:
    d = Config().to_dict()
    d["steps"] = None      # "steps: 300" is the default only when 'epochs' is not given
    return d


def _workload_defaults(user: dict[str, Any]) -> dict[str, Any]:
    """The defaults of the (dataset, model) pair the user's keys name (flexsync.workloads);
    a budget in steps is dropped when the user gives epochs."""
    base = Config.model_fields
    found = workload_defaults(str(user.get("dataset", base["dataset"].default)),
                              str(user.get("model", base["model"].default)))
    if user.get("epochs") is not None:
        found.pop("steps", None)
    return found


def build_config(tree: dict[str, Any] | None = None, overrides: list[str] = ()) -> Config:
    """Defaults, the (dataset, model) pair's defaults (:mod:`flexsync.workloads`), then the
    YAML tree, then each ``--set`` override; validated as a whole."""
    if tree is not None and not isinstance(tree, dict):
        raise ConfigError(f"a configuration must be a mapping of keys to values, got "
                          f"{type(tree).__name__}")
    user = _shorthand(tree or {})
    for a in overrides:
        if not isinstance(a, str):
            raise ConfigError(f"an override must be a 'dotted.key=value' string, got {a!r}")
        patch: dict[str, Any] = {}
        set_dotted(patch, a)
        user = _merge(user, _shorthand(patch))
    merged = _merge(_merge(defaults(), _workload_defaults(user)), user)
    try:
        return Config.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_format_error(e)) from None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(_yaml_error(p, e)) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: cannot read the config file ({e})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of keys to values")
        tree = loaded or {}
        tree.setdefault("out", f"runs/{p.stem}")    # a config's runs land under its own name
    return build_config(tree, overrides)


def _yaml_error(path: Path, e: yaml.YAMLError) -> str:
    """``file:line:column: problem`` on one line (line and column 1-based)."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    what = " ".join(str(getattr(e, "problem", None) or e).split())
    ctx = getattr(e, "context", None)
    return f"{where}: not valid YAML: {what}" + (f" ({' '.join(ctx.split())})" if ctx else "")


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
