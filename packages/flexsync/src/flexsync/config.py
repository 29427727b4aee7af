"""The run configuration: YAML in, validated dataclasses out.

Every key has a visible default (``flexsync run --print-config``), unknown keys and bad values
are rejected with a message that names the key, and every key can be overridden from the
command line with ``--set dotted.key=value`` (the value is parsed as YAML).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flexsync.net.units import parse_bandwidth, parse_duration

DATASETS = ("synthetic-images", "digits", "mnist", "synthetic-text")


class ConfigError(ValueError):
    """A configuration problem, with a message fit to show the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _duration(v: Any) -> Any:
    parse_duration(v)
    return v


def _bandwidth(v: Any) -> Any:
    parse_bandwidth(v)
    return v


Duration = Annotated[str | float, Field(union_mode="left_to_right")]
Bandwidth = Annotated[str | float, Field(union_mode="left_to_right")]


# -- network ------------------------------------------------------------------------------------
class _NetBase(_Strict):
    model_params: float | None = Field(
        None, gt=0, description="price communication as if the model had this many parameters"
    )


class ModeledNetwork(_NetBase):
    kind: Literal["modeled"] = "modeled"
    alpha: Duration = "1ms"
    bandwidth: Bandwidth = "100mbit"

    _check_alpha = field_validator("alpha")(_duration)
    _check_bw = field_validator("bandwidth")(_bandwidth)


class PhaseConfig(_Strict):
    start: float = Field(ge=0)
    alpha: Duration
    bandwidth: Bandwidth

    _check_alpha = field_validator("alpha")(_duration)
    _check_bw = field_validator("bandwidth")(_bandwidth)


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


class LoopbackNetwork(_Strict):
    kind: Literal["loopback"]


class EmulatedNetworkConfig(_NetBase):
    """Real shaped links: one network namespace per worker, tbf on each uplink (needs root),
    plus an optional per-message ``delay``. With ``estimate`` the network conditions every
    strategy sees are fitted live from the run's own collective timings; otherwise the
    configured bandwidth and delay are used."""

    kind: Literal["emulated"]
    bandwidth: Bandwidth = "100mbit"
    delay: Duration = Field(0.0, description="per-message latency α, added by each worker's "
                            "communicator (the kernel has no netem)")
    estimate: bool = True

    _check_bw = field_validator("bandwidth")(_bandwidth)
    _check_delay = field_validator("delay")(_duration)


Network = Annotated[
    ModeledNetwork | ScheduleNetwork | LoopbackNetwork | EmulatedNetworkConfig,
    Field(discriminator="kind"),
]


# -- strategies ---------------------------------------------------------------------------------
class DenseConfig(_Strict):
    name: Literal["dense"] = "dense"
    algo: Literal["ring", "tree", "ps"] = "ring"


class DDPConfig(_Strict):
    """Plain torch DDP with PyTorch's own comm hooks: the baseline users would pick."""

    name: Literal["ddp"]
    hook: Literal["none", "allreduce", "fp16", "powersgd"] = "none"
    powersgd_rank: int = Field(2, ge=1)
    powersgd_start_iter: int = Field(10, ge=1)
    bucket_cap_mb: float = Field(25.0, gt=0)


class ScaDLESConfig(_Strict):
    """ScaDLES (ddl-methods.md §4.2, §4.4); pair it with a ``stream:`` section."""

    name: Literal["scadles"]
    base_batch: int | None = Field(None, ge=1, description="B of the LR rule; null = 64·N")
    lr_scaling: bool = True
    ratio: float | None = Field(0.1, gt=0, lt=1, description="top-k keep fraction; null = dense")
    delta: float = Field(0.3, ge=0)
    metric: Literal["paper", "code"] = "paper"
    smoothing: float = Field(0.1, gt=0, le=1)


class StreamConfig(_Strict):
    """Per-device sample streams (ddl-methods.md §4.1, §4.3); any strategy can train on them.
    ``batch: auto`` means b_i = clamp(S_i·τ, b_min, b_max) for scadles and ``batch_size``
    for every other strategy."""

    rates: Literal["S1", "S2", "S1-normal", "S2-normal"] | list[float] = "S1"
    policy: Literal["persistence", "truncation"] = "truncation"
    batch: Literal["auto", "fixed", "rate"] = "auto"
    tau: float = Field(1.0, gt=0)
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


class MOOConfig(_Strict):
    """The MOO ratio controller (ddl-methods.md §1.4); used when ``ratio: moo``."""

    c_low: float = Field(0.001, gt=0, le=1)
    c_high: float = Field(0.1, gt=0, le=1)
    c_init: float = Field(0.1, gt=0, le=1)
    candidates: list[float] | None = None
    warmup_steps: int = Field(100, ge=0)
    explore_steps: int = Field(10, ge=1)
    mode: Literal["online", "snapshot"] = "online"
    weights: tuple[float, float] = (0.6, 0.4)
    gain_change_threshold: float = Field(0.1, gt=0)
    gain_window: int = Field(5, ge=1)
    gain_smoothing: float = Field(0.01, ge=0, lt=1)
    cooldown: int = Field(200, ge=0)
    moo_on_gain_change: bool = False
    solver: Literal["grid", "nsga2"] = "grid"

    @model_validator(mode="after")
    def _bounds(self) -> MOOConfig:
        if self.c_low >= self.c_high:
            raise ValueError(f"c_low ({self.c_low}) must be below c_high ({self.c_high})")
        return self


class _SparseConfig(_Strict):
    ratio: float | Literal["moo"] = Field(0.01, description="keep fraction c, or 'moo'")
    selector: Literal["topk", "layerwise", "randomk", "threshold"] = "topk"
    index: Literal["star", "var"] = "star"
    var_score: Literal["paper", "code"] = "paper"
    gain_norm: Literal["sq", "l2"] = "sq"
    moo: MOOConfig | None = None

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: float | str) -> float | str:
        if v != "moo" and not 0 < v <= 1:
            raise ValueError("ratio must be in (0, 1] or 'moo'")
        return v

    @model_validator(mode="after")
    def _moo(self) -> _SparseConfig:
        if self.ratio == "moo" and self.moo is None:
            self.moo = MOOConfig()
        if self.ratio != "moo" and self.moo is not None:
            raise ValueError("'moo' options need ratio: moo")
        return self


class TopkConfig(_SparseConfig):
    name: Literal["topk"]


class ARTopkConfig(_SparseConfig):
    name: Literal["artopk"]
    algo: Literal["ring", "tree"] = "ring"


class FlexibleConfig(_SparseConfig):
    name: Literal["flexible"]
    collectives: list[Literal["allgather", "art_ring", "art_tree"]] = [
        "allgather", "art_ring", "art_tree"]


class _LocalUpdateConfig(_Strict):
    """Options shared by strategies that step locally and average parameters (selsync,
    fedavg, localsgd; see flexsync.strategies.local)."""

    average_buffers: bool = True
    sync_optimizer_state: bool = False
    eval_model: Literal["average", "local"] = "average"
    divergence_every: int = Field(0, ge=0, description="log replica divergence every N steps")


class SelSyncConfig(_LocalUpdateConfig):
    """SelSync (ddl-methods.md §2.2)."""

    name: Literal["selsync"]
    delta: float | None = Field(0.3, ge=0, description="threshold δ; null or .inf: never")
    delta_mode: Literal["absolute", "quantile"] = "absolute"
    quantile: float = Field(0.85, ge=0, le=1)
    calibration_steps: int = Field(200, ge=0)
    signal: Literal["paper_sq_global", "code_sum_layer_l2"] = "paper_sq_global"
    window: int = Field(25, ge=1)
    smoothing: float | None = Field(None, ge=0, lt=1, description="null: N/100 (paper)")
    smooth_delta: bool = False
    aggregation: Literal["parameter", "gradient"] = "parameter"
    warmup_steps: int = Field(0, ge=0)


class FedAvgConfig(_LocalUpdateConfig):
    """FedAvg(C, E) (ddl-methods.md §2.5); the period defaults to E = 0.25 local epochs."""

    name: Literal["fedavg"]
    fraction: float = Field(1.0, gt=0, le=1)
    period_epochs: float | None = Field(None, gt=0)
    period_steps: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_period(self) -> FedAvgConfig:
        if self.period_epochs is not None and self.period_steps is not None:
            raise ValueError("give either 'period_epochs' or 'period_steps', not both")
        if self.period_epochs is None and self.period_steps is None:
            self.period_epochs = 0.25
        return self


class LocalSGDConfig(_LocalUpdateConfig):
    name: Literal["localsgd"]
    average_every: int = Field(0, ge=0, description="0: never average (SelSync with δ = ∞)")


class GraVACConfig(_Strict):
    """GraVAC (ddl-methods.md §3(a)-(b)); compression factors θ (keep fraction 1/θ)."""

    name: Literal["gravac"]
    theta_min: float = Field(10.0, gt=1)
    theta_max: float = Field(1000.0, gt=1)
    policy: Literal["exponential", "geometric"] = "exponential"
    epsilon: float = Field(0.7, ge=0, description="gain threshold ε")
    omega: float = Field(0.01, ge=0, description="promotion / saturation tolerance ω")
    window: int = Field(500, ge=1, description="steps per candidate CF")
    smoothing: float | None = Field(None, gt=0, le=1, description="gain EWMA; null: N/100")
    gain_smoothing: Literal["ratio_of_ewma", "ewma_of_ratio"] = "ratio_of_ewma"
    gain_norm: Literal["sq", "l2"] = "sq"
    gain_denominator: Literal["fed", "raw"] = "fed"
    selector: Literal["topk", "layerwise", "randomk", "threshold"] = "topk"
    consensus: Literal["piggyback", "allreduce"] = "piggyback"
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> GraVACConfig:
        if self.theta_min >= self.theta_max:
            raise ValueError(f"theta_min ({self.theta_min}) must be below theta_max "
                             f"({self.theta_max})")
        return self


class AccordionConfig(_Strict):
    """Accordion baseline (ddl-methods.md §3(a)): low CF in critical regimes, else high."""

    name: Literal["accordion"]
    low_cf: float = Field(10.0, ge=1)
    high_cf: float = Field(1000.0, ge=1)
    eta: float = Field(0.2, ge=0, description="relative-change threshold η")
    window: int = Field(100, ge=1)
    smoothing: float = Field(0.02, ge=0, lt=1)
    interval: int = Field(1, ge=1, description="steps between regime detections")
    selector: Literal["topk", "layerwise", "randomk", "threshold"] = "topk"
    gain_norm: Literal["sq", "l2"] = "sq"
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> AccordionConfig:
        if self.low_cf >= self.high_cf:
            raise ValueError(f"low_cf ({self.low_cf}) must be below high_cf ({self.high_cf})")
        return self


StrategyConfig = Annotated[
    DenseConfig | DDPConfig | TopkConfig | ARTopkConfig | FlexibleConfig | SelSyncConfig
    | FedAvgConfig | LocalSGDConfig | GraVACConfig | AccordionConfig | ScaDLESConfig,
    Field(discriminator="name"),
]


# -- everything else ----------------------------------------------------------------------------
class InjectionConfig(_Strict):
    """Data injection (ddl-methods.md §2.4, §4.5): α = fraction of senders (or peers), β =
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
    vocab: int = Field(1000, ge=2)
    train_tokens: int = Field(200_000, ge=100)
    test_tokens: int = Field(20_000, ge=100)
    seq_len: int = Field(35, ge=2)

    def options_for(self, dataset: str) -> dict[str, Any]:
        if dataset == "synthetic-images":
            keys = ("classes", "prototypes", "noise", "train_size", "test_size", "image_size")
        elif dataset == "synthetic-text":
            keys = ("vocab", "train_tokens", "test_tokens", "seq_len")
        else:
            keys = ()
        return {k: getattr(self, k) for k in keys}


class OptimizerConfig(_Strict):
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


class ClockConfig(_Strict):
    """How compute time enters the virtual clock: ``measured`` CPU time of the worker's own
    thread (unaffected by other workers sharing the cores), or ``model``: t0 + t1·batch."""

    compute: Literal["measured", "model"] = "measured"
    t0: Duration = 0.0
    t1: Duration = "0.5ms"

    _check_t0 = field_validator("t0")(_duration)
    _check_t1 = field_validator("t1")(_duration)


class TargetConfig(_Strict):
    accuracy: float | None = Field(None, gt=0, le=1)
    perplexity: float | None = Field(None, gt=1)


class EvalConfig(_Strict):
    every: int = Field(50, ge=1, description="evaluate on the test set every N steps")
    batch_size: int = Field(1000, ge=1)


class CheckpointConfig(_Strict):
    every: int | None = Field(None, ge=1, description="save every N steps (and at the end)")
    keep: int = Field(2, ge=1, description="how many recent checkpoints to keep")


class Config(_Strict):
    workers: int = Field(4, ge=1, le=256)
    steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    seed: int = Field(0, ge=0)
    dataset: Literal["synthetic-images", "digits", "mnist", "synthetic-text"] = "synthetic-images"
    data: DataConfig = DataConfig()
    model: Literal["cnn", "resnet", "lstm"] = "cnn"
    batch_size: int = Field(32, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    strategy: StrategyConfig = DenseConfig()
    network: Network = ModeledNetwork()
    stream: StreamConfig | None = None
    clock: ClockConfig = ClockConfig()
    target: TargetConfig = TargetConfig()
    eval: EvalConfig = EvalConfig()
    out: str = "runs/run"
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    timeout_s: float = Field(300, gt=0, description="a collective waiting longer fails the run")
    checkpoint: CheckpointConfig = CheckpointConfig()
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="non-finite gradients on any rank: stop the run, or skip the step")
    progress: bool = True

    @model_validator(mode="after")
    def _check(self) -> Config:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give either 'steps' or 'epochs', not both")
        if self.steps is None and self.epochs is None:
            self.steps = 300
        text = self.dataset == "synthetic-text"
        if text != (self.model == "lstm"):
            raise ValueError(
                f"model {self.model!r} does not fit dataset {self.dataset!r}: "
                "use model 'lstm' with 'synthetic-text', and 'cnn' or 'resnet' with images"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# -- loading ------------------------------------------------------------------------------------
_TAGGED = {"strategy": "name", "network": "kind"}


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        # Discriminated unions put the tag into the path ("network.schedule.preset"): drop it.
        if len(loc) >= 2 and loc[0] in _TAGGED and e["type"] != "union_tag_invalid":
            del loc[1]
        msg = e["msg"].removeprefix("Value error, ")
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


def build_config(tree: dict[str, Any] | None = None, overrides: list[str] = ()) -> Config:
    """Defaults, then the YAML tree, then each ``--set`` override; validated as a whole."""
    if tree is not None and not isinstance(tree, dict):
        raise ConfigError(f"a configuration must be a mapping of keys to values, got "
                          f"{type(tree).__name__}")
    merged = _merge(defaults(), _shorthand(tree or {}))
    for a in overrides:
        if not isinstance(a, str):
            raise ConfigError(f"an override must be a 'dotted.key=value' string, got {a!r}")
        patch: dict[str, Any] = {}
        set_dotted(patch, a)
        merged = _merge(merged, _shorthand(patch))
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
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of keys to values")
        tree = loaded or {}
    return build_config(tree, overrides)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
