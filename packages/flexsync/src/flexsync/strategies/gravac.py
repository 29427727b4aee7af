"""GraVAC: adaptive compression factor from the gradient information compression keeps
(GraVAC paper Alg. 1, made precise in docs/methods.md §3(a); departures listed there).

Compression factor (CF) θ means keep fraction 1/θ (θ = 1 is dense). Every step:

1. g_ef = g + r (error feedback, §0.2).
2. Level 1: g_min = top-k of g_ef at θ_min. Level 2 (multi-level): g_c = top-k of the
   *already sparse* g_min at the candidate θ_c > θ_min.
3. Gains δ = EWMA(‖g_sent‖²) / EWMA(‖g_ef‖²) for g_min and g_c (``gain_smoothing``
   "ratio_of_ewma", the paper's text; "ewma_of_ratio" is Alg. 1's form), then their mean over
   ranks, so every rank takes the same decision (§0.6). ``consensus`` "allreduce" agrees this
   step's gains with one tiny allreduce before the tests (§3(a) verbatim). "piggyback" (default)
   carries each rank's gains in the step's aggregation message and tests the cluster mean of
   the previous step's smoothed gains (one step of lag on an EWMA, no extra α-bound
   collective); it falls back to the allreduce at the first step and whenever θ_min or θ_c
   just changed (no agreed gain exists yet for the new CF).
4. Scale-down, per step: send g_c if δ_c ≥ ε, else g_min if δ_min ≥ ε (allgather of values and
   indices), else g_ef dense (allreduce; the residual becomes 0).
5. Throughput table: T_comp[θ] ← running mean of T_sys·δ over the steps that sent at θ, with
   T_sys = N·b / t and t the clock's modeled duration of that step (known at the next step).
6. Every ``window`` steps, unless frozen (scale-up): promote θ_min ← θ_c when
   |δ_min − δ_c| / δ_min ≤ ω; advance θ_c to the next scheduled candidate above θ_min; and if
   the two best throughputs of the table are within ω, freeze at the *smaller* CF of the two.
   Frozen, the per-step scale-down of step 4 still runs.

A gain smoother's history belongs to one CF: when θ_c changes its smoother restarts (and a
promoted θ_min takes over θ_c's), and numerator and denominator are smoothed in pairs over the
same steps, so every gain stays in [0, 1].
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_mean
from flexsync.compress import Sparsifier, multilevel_topk
from flexsync.net.cost_model import topk_count
from flexsync.strategies.base import StepContext, Strategy
from flexsync.strategies.grads import assign_grads, flatten_grads
from flexsync.strategies.options import SparsifierOptions
from flexsync.strategies.smoothing import EWMA
from flexsync.strategies.sparse import aggregate

POLICIES = ("exponential", "geometric")
GAIN_SMOOTHING = ("ratio_of_ewma", "ewma_of_ratio")


def candidate_schedule(theta_min: float, theta_max: float, policy: str) -> list[float]:
    """The absolute candidate CFs (docs/methods.md §3(a)), each capped at θ_max.

    exponential: θ_0·2^(2^(j−1)), j = 1, 2, … (10 → 20, 40, 160, 1000 with θ_max = 1000);
    geometric: θ_0·2^j (10 → 20, 40, …, 1280, 2000 with θ_max = 2000).
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if not 1 < theta_min < theta_max:
        raise ValueError(f"need 1 < theta_min < theta_max, got {theta_min}, {theta_max}")
    out: list[float] = []
    j = 1
    while not out or out[-1] < theta_max:
        exponent = 2 ** (j - 1) if policy == "exponential" else j
        out.append(min(theta_min * 2.0 ** exponent, float(theta_max)))
        j += 1
    return out


class SmoothedGain:
    """One CF's gain from smoothed norms: EWMA(sent)/EWMA(fed) or EWMA(sent/fed).

    ``norm`` "sq" uses squared L2 norms (paper), "l2" plain L2 norms (the original code's form,
    larger values at high CF). Undefined (None) before the first update.
    """

    def __init__(self, smoothing: float, mode: str = "ratio_of_ewma") -> None:
        if mode not in GAIN_SMOOTHING:
            raise ValueError(f"gain_smoothing must be one of {GAIN_SMOOTHING}, got {mode!r}")
        self.smoothing = smoothing
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        self.num, self.den, self.ratio = (EWMA(self.smoothing) for _ in range(3))

    def update(self, sent: float, fed: float) -> float:
        if self.mode == "ewma_of_ratio":
            return self.ratio.update(sent / fed if fed > 0 else 1.0)
        num, den = self.num.update(sent), self.den.update(fed)
        return num / den if den > 0 else 1.0

    @property
    def value(self) -> float | None:
        if self.mode == "ewma_of_ratio":
            return self.ratio.value
        if self.den.value is None:
            return None
        return self.num.value / self.den.value if self.den.value > 0 else 1.0

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).state_dict() for k in ("num", "den", "ratio")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in ("num", "den", "ratio"):
            getattr(self, k).load_state_dict(state[k])


class ThroughputTable:
    """T_comp[θ]: running mean of compression throughput T_sys·δ per CF actually sent
    (θ = 1 is dense), docs/methods.md §3(a) step 7 (a mean, not the last sample)."""

    def __init__(self) -> None:
        self.mean: dict[float, float] = {}
        self.count: dict[float, int] = {}

    def add(self, theta: float, value: float) -> None:
        n = self.count.get(theta, 0) + 1
        self.count[theta] = n
        self.mean[theta] = self.mean.get(theta, 0.0) + (value - self.mean.get(theta, 0.0)) / n

    def saturated(self, omega: float) -> float | None:
        """The smaller CF of the two best entries when they are within ω of each other
        (|top1 − top2| / top2 ≤ ω), else None; needs at least two entries."""
        if len(self.mean) < 2:
            return None
        (cf1, t1), (cf2, t2) = sorted(self.mean.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        if t2 <= 0 or abs(t1 - t2) / t2 > omega:
            return None
        return min(cf1, cf2)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {_cf_key(cf): {"throughput": self.mean[cf], "steps": self.count[cf]}
                for cf in sorted(self.mean)}

    def state_dict(self) -> dict[str, Any]:
        return {"mean": dict(self.mean), "count": dict(self.count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = {float(k): float(v) for k, v in state["mean"].items()}
        self.count = {float(k): int(v) for k, v in state["count"].items()}


def _cf_key(cf: float) -> str:
    return f"{cf:g}"


class GraVACOptions(SparsifierOptions):
    """GraVAC's options; compression factors θ (keep fraction 1/θ). ``selector`` is level 1's;
    level 2 is always the exact top-k of level 1's kept values."""

    name: Literal["gravac"] = "gravac"
    theta_min: float = Field(10.0, gt=1)
    theta_max: float = Field(1000.0, gt=1)
    policy: Literal["exponential", "geometric"] = "exponential"
    epsilon: float = Field(0.7, ge=0, description="gain threshold ε")
    omega: float = Field(0.01, ge=0, description="promotion / saturation tolerance ω")
    window: int = Field(500, ge=1, description="steps per candidate CF")
    smoothing: float | None = Field(None, gt=0, le=1, description="gain EWMA; null: N/100")
    gain_smoothing: Literal["ratio_of_ewma", "ewma_of_ratio"] = "ratio_of_ewma"
    gain_denominator: Literal["fed", "raw"] = "fed"
    consensus: Literal["piggyback", "allreduce"] = "piggyback"

    @model_validator(mode="after")
    def _bounds(self) -> GraVACOptions:
        if self.theta_min >= self.theta_max:
            raise ValueError(f"theta_min ({self.theta_min}) must be below theta_max "
                             f"({self.theta_max})")
        return self

    def network_aware(self) -> bool:
        return True          # throughput = samples per modeled step time


class GraVAC(Strategy):
    """GraVAC (docs/methods.md §3(a)). Defaults follow the paper's exponential policy.

    Args:
        theta_min: initial minimum CF θ_0 (> 1); promoted at window boundaries.
        theta_max: largest candidate CF.
        policy: candidate schedule, "exponential" or "geometric" (:func:`candidate_schedule`).
        epsilon: gain threshold ε of the per-step tests (0 always sends the candidate; > 1
            always sends dense).
        omega: tolerance ω of promotion and saturation (relative).
        window: steps per candidate (scale-up happens only at window boundaries).
        smoothing: EWMA factor of the gain smoothers; None means N/100 (paper).
        gain_smoothing: "ratio_of_ewma" (paper text) or "ewma_of_ratio" (Alg. 1).
        gain_norm: "sq" (squared L2, paper) or "l2".
        gain_denominator: "fed" (error-fed gradient, paper) or "raw" (the original code's raw
            gradient; gains can exceed 1 and ε loses meaning under error feedback: fidelity
            only, warns).
        selector: level-1 selector ("topk" fused, "layerwise", "randomk", "threshold"); level
            2 is always the exact top-k of level 1's kept values.
        seed: seeds the selectors' generator (random-k, thresholds).
    """

    name = "gravac"

    Options = GraVACOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        self.consensus = o.consensus
        self.schedule = candidate_schedule(o.theta_min, o.theta_max, o.policy)
        if o.gain_denominator == "raw":
            warnings.warn("GraVAC gain_denominator='raw' reproduces the original code: under "
                          "error feedback its gains reach 1 even at 1000x, so the ε tests lose "
                          "their meaning (docs/methods.md, GraVAC)", stacklevel=2)
        a = comm.world_size / 100 if o.smoothing is None else o.smoothing
        if not 0 < a <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {a}")
        self.epsilon, self.omega, self.window = o.epsilon, o.omega, o.window
        self.gain_norm, self.gain_denominator = o.gain_norm, o.gain_denominator
        self.theta_min = float(o.theta_min)
        self.theta_c = self.schedule[0]
        self.frozen = False
        self.min_gain = SmoothedGain(a, o.gain_smoothing)
        self.c_gain = SmoothedGain(a, o.gain_smoothing)
        self.table = ThroughputTable()
        self.sparsifier = Sparsifier(self.num_params, o.selector, [p.numel() for p in self.params],
                                     o.seed, comm.rank, device=self.params[0].device,
                                     dtype=self.params[0].dtype, values=o.values)
        self.gains = (1.0, 1.0)            # the last agreed (δ_min, δ_c)
        self._agreed: tuple[float, float] | None = None   # piggybacked means, for the next step
        self._sent: tuple[float, float] | None = None   # (θ, δ) of the previous step
        self.cf_steps: Counter[str] = Counter()
        self.decisions: Counter[str] = Counter()
        self.events: list[dict[str, Any]] = []

    # -- the step ------------------------------------------------------------------------
    def step(self, ctx: StepContext) -> None:
        self.begin(ctx)
        grad = flatten_grads(self.params)
        fed = self.sparsifier.feed(grad)
        local, idx_min, idx_c = self.measure(fed, grad, self.sparsifier.select)
        decision, theta, gain, idx = self.decide(local, idx_min, idx_c)
        piggy = {"gains": local} if self.consensus == "piggyback" else {}
        res = aggregate(self.comm, fed, self.sparsifier, 1.0 / theta, "allgather",
                        step=ctx.step, gain_norm=None, extras=piggy, indices=idx)
        if piggy:
            self.agreed_from(res.means(self.comm.world_size)["gains"])
        assign_grads(self.params, res.total / self.comm.world_size)
        self.optimizer.step()
        self.sent(theta, gain, decision, res.k, res.collective)

    # -- the step's parts (the ``auto`` strategy runs them around its own aggregation) ----
    def begin(self, ctx: StepContext, step: int | None = None) -> None:
        """UpdateStep for the previous step, then CheckGraVAC when a window ends at
        ``step`` (default: the context's step; a caller that runs GraVAC on some steps
        only counts its own)."""
        step = ctx.step if step is None else step
        self._record_throughput(ctx)
        if not self.frozen and step > 0 and step % self.window == 0:
            self._check(step)

    def measure(self, fed: torch.Tensor, grad: torch.Tensor,
                select: Callable[[torch.Tensor, float], torch.Tensor]
                ) -> tuple[list[float], torch.Tensor, torch.Tensor]:
        """Steps 2–3: level 1 (``select`` at θ_min) and level 2 (top-k of level 1 at θ_c) of
        the error-fed ``fed``, and this rank's smoothed gains [δ_min, δ_c]. Returns (gains,
        level-1 indices, level-2 indices)."""
        n = fed.numel()
        idx_min = select(fed, 1.0 / self.theta_min)                       # level 1
        v_min = fed[idx_min]
        if self.theta_c > self.theta_min:                                 # level 2
            v_c, idx_c = multilevel_topk(v_min, idx_min, topk_count(n, 1.0 / self.theta_c))
        else:
            v_c, idx_c = v_min, idx_min
        den = self._norm(grad if self.gain_denominator == "raw" else fed)
        local = [self.min_gain.update(self._norm(v_min), den),
                 self.c_gain.update(self._norm(v_c), den)]
        if self.gain_denominator == "fed":
            local = [min(1.0, max(0.0, g)) for g in local]
        return local, idx_min, idx_c

    def decide(self, local: list[float], idx_min: torch.Tensor, idx_c: torch.Tensor
               ) -> tuple[str, float, float, torch.Tensor | None]:
        """Step 4 on agreed gains (this step's, by a tiny allreduce, when no piggybacked
        ones are pending): (decision, θ, gain, indices to send; None when dense)."""
        if self._agreed is None:                                         # consensus (§0.6)
            d_min, d_c = agree_mean(self.comm, local)
        else:
            d_min, d_c = self._agreed
        self.gains = (d_min, d_c)
        if d_c >= self.epsilon and self.theta_c > self.theta_min:
            return "candidate", self.theta_c, d_c, idx_c
        if d_min >= self.epsilon:
            return "min", self.theta_min, d_min, idx_min
        return "dense", 1.0, 1.0, None

    def agreed_from(self, means: list[float]) -> None:
        """The cluster means of the gains that rode in this step's message (piggyback
        consensus), for the next step's tests."""
        self._agreed = (means[0], means[1])

    def sent(self, theta: float, gain: float, decision: str, k: int, collective: str) -> None:
        """Bookkeeping after the aggregation: what was sent, counters and signals."""
        d_min, d_c = self.gains
        self._sent = (theta, gain)
        self.cf_steps[_cf_key(theta)] += 1
        self.decisions[decision] += 1
        self._signals = {
            "cf": theta, "ratio": 1.0 / theta, "k": k,
            "collective": collective, "decision": decision, "gain": gain,
            "delta_min": d_min, "delta_c": d_c, "theta_min": self.theta_min,
            "theta_c": self.theta_c, "frozen": self.frozen,
        }

    def _norm(self, x: torch.Tensor) -> float:
        sq = float(x.double().pow(2).sum())
        return sq if self.gain_norm == "sq" else math.sqrt(sq)

    # -- UpdateStep and CheckGraVAC ------------------------------------------------------
    def _record_throughput(self, ctx: StepContext) -> None:
        """UpdateStep for the previous step, now that its modeled duration is known:
        T_sys = N·b / t, and T_comp[θ] takes T_sys·δ (docs/methods.md §3(a) step 7)."""
        if self._sent is None or not ctx.prev_step_s or ctx.prev_step_s <= 0:
            return
        theta, gain = self._sent
        samples = self.comm.world_size * (ctx.batch_size or 1)
        self.table.add(theta, samples / ctx.prev_step_s * gain)

    def _check(self, step: int) -> None:
        """CheckGraVAC at a window boundary (§3(a) step 8): promote, advance, saturate."""
        d_min, d_c = self.gains
        before = (self.theta_min, self.theta_c)
        if self.theta_c > self.theta_min and d_min > 0 and abs(d_min - d_c) / d_min <= self.omega:
            self.theta_min = self.theta_c                       # promotion keeps θ_c's history
            self.min_gain = copy.deepcopy(self.c_gain)
            self._agreed = None
        later = [t for t in self.schedule if t > max(self.theta_min, self.theta_c)]
        if later:
            self._set_candidate(later[0])
        elif self.theta_c <= self.theta_min:                    # promoted to the last one
            self._set_candidate(self.theta_min)
        ideal = self.table.saturated(self.omega)
        if ideal is not None:
            self._set_candidate(max(ideal, self.theta_min))
            self.frozen = True
        if (self.theta_min, self.theta_c) != before or self.frozen:
            self.events.append({"step": step, "theta_min": self.theta_min,
                                "theta_c": self.theta_c, "frozen": self.frozen})

    def _set_candidate(self, theta: float) -> None:
        if theta != self.theta_c:
            self.theta_c = theta
            self.c_gain.reset()
            self._agreed = None

    # -- reporting and checkpoints -------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {"gravac": {
            "throughput_table": self.table.as_dict(), "cf_steps": dict(self.cf_steps),
            "decisions": dict(self.decisions), "theta_min": self.theta_min,
            "theta_c": self.theta_c, "frozen": self.frozen, "events": self.events,
        }}

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.sparsifier.state_dict(),
            "theta_min": self.theta_min, "theta_c": self.theta_c, "frozen": self.frozen,
            "min_gain": self.min_gain.state_dict(), "c_gain": self.c_gain.state_dict(),
            "table": self.table.state_dict(), "gains": list(self.gains), "sent": self._sent,
            "cf_steps": dict(self.cf_steps), "decisions": dict(self.decisions),
            "events": list(self.events), "agreed": self._agreed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sparsifier.load_state_dict(state)
        self.theta_min, self.theta_c = float(state["theta_min"]), float(state["theta_c"])
        self.frozen = bool(state["frozen"])
        self.min_gain.load_state_dict(state["min_gain"])
        self.c_gain.load_state_dict(state["c_gain"])
        self.table.load_state_dict(state["table"])
        self.gains = tuple(state["gains"])
        self._sent = None if state["sent"] is None else tuple(state["sent"])
        self.cf_steps = Counter(state["cf_steps"])
        self.decisions = Counter(state["decisions"])
        self.events = list(state["events"])
        self._agreed = None if state["agreed"] is None else tuple(state["agreed"])
