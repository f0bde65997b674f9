"""Tiny settings for the general_rec pipeline, as runtime params (dotted keys)."""

from __future__ import annotations

from pathlib import Path

TINY_OVERRIDES = {
    "ease.tuning.n_trials": 2,
    "user_ease.tuning.n_trials": 2,
    "admm_slim.enabled": True,
    "admm_slim.tuning.n_trials": 2,
    "admm_slim.hyperparameters.iterations": 5,
    "multivae.enabled": True,
    "multivae.tuning.enabled": True,  # off by default; the test runs its study
    "multivae.tuning.n_trials": 2,
    "multivae.hyperparameters.hidden": 32,
    "multivae.hyperparameters.latent": 8,
    "multivae.hyperparameters.batch_size": 64,
    "multivae.train.max_updates": 24,
    "multivae.train.eval_every": 8,
    "multivae.train.patience": 2,
    "multivae.train.progress": False,
    "multivae.tuning.search_space.hidden.choices": [16, 32],
    "multivae.tuning.search_space.latent.choices": [8],
    "recvae.enabled": True,
    "recvae.hyperparameters.hidden": 32,
    "recvae.hyperparameters.latent": 8,
    "recvae.hyperparameters.batch_size": 64,
    "recvae.hyperparameters.encoder_updates": 3,
    "recvae.hyperparameters.decoder_updates": 1,
    "recvae.train.max_updates": 24,
    "recvae.train.eval_every": 8,
    "recvae.train.final_updates": 4,  # one encoder-decoder cycle, as the default's 189 + 63
    "recvae.train.progress": False,
}


def tiny_runtime_params(storage_dir: Path) -> dict:
    """Dotted ``general_rec.*`` overrides for ``run_pipeline``, studies in ``storage_dir``."""
    params = {f"general_rec.{k}": v for k, v in TINY_OVERRIDES.items()}
    return {**params, "tuning.storage_dir": str(storage_dir)}
