"""flexsync: communication strategies for data-parallel training on slow, changing networks."""

from flexsync.api import train
from flexsync.comm import Communicator
from flexsync.config import Config, ConfigError, build_config, load_config
from flexsync.data import Dataset
from flexsync.integrations.optimizer import DistributedOptimizer, log_to
from flexsync.launch import WorkerFailed, run_local
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies import STRATEGIES, StepContext, Strategy, build_strategy

__version__ = "0.1.0"

__all__ = [
    "train", "Communicator", "Config", "ConfigError", "build_config", "load_config", "Dataset",
    "DistributedOptimizer", "log_to", "NetworkConditions", "WorkerFailed", "run_local",
    "STRATEGIES", "StepContext", "Strategy", "build_strategy",
]
