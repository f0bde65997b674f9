"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from movie_rec.hooks import NodeMemoryHooks, RuntimeHooks
from movie_rec.tracking import MLflowHooks

HOOKS = (RuntimeHooks(), MLflowHooks(), NodeMemoryHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
