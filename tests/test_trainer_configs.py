"""Every trainer config (configs/trainer/, found by globbing) composes and builds what it names (issue 15, section 4).

A CPU machine cannot run the GPU configs, and nothing here pretends to: a DDP config's Trainer is built with
`accelerator=cpu` (everything else as configured), an FSDP config's Trainer is refused by Lightning on CPU (checked),
and its strategy is built and read instead. The SLURM case sets the environment `srun` gives a rank of
scripts/slurm/train.sbatch's allocation, and checks Lightning reads that rank from it.
"""

from __future__ import annotations

import re
from pathlib import Path

import hydra
import pytest
import torch
from hydra.errors import InstantiationException
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy
from test_config_compose import TINY, compose_train, group_files

from medcoder.models.encoder import load_encoder

SBATCH = Path(__file__).resolve().parents[1] / "scripts" / "slurm" / "train.sbatch"
GPU_ONLY = not torch.cuda.is_available()


def build_trainer(cfg, **overrides):
    on_cpu = {"accelerator": "cpu"} if GPU_ONLY and cfg.trainer.accelerator in ("gpu", "cuda") else {}
    return hydra.utils.instantiate(cfg.trainer, logger=False, **on_cpu, **overrides)


@pytest.mark.parametrize("name", group_files("trainer"))
def test_trainer_config_composes_and_builds(name: str, tmp_path: Path) -> None:
    cfg = compose_train([f"trainer={name}", *TINY], tmp_path)
    strategy = cfg.trainer.get("strategy")
    if isinstance(strategy, str) or strategy is None:
        trainer = build_trainer(cfg)
        assert trainer.max_epochs == cfg.trainer.max_epochs
        assert trainer.num_nodes == cfg.trainer.get("num_nodes", 1) and trainer.num_devices == cfg.trainer.devices
        if strategy == "ddp":
            assert isinstance(trainer.strategy, DDPStrategy) and trainer.world_size == cfg.trainer.devices * (
                cfg.trainer.num_nodes
            )
        return

    built = hydra.utils.instantiate(strategy)
    assert isinstance(built, FSDPStrategy)
    # one FSDP unit per transformer layer of the encoder the recipe trains, the packaged MiniLM: a policy naming a
    # class the encoder lacks would leave the whole model as one unit
    policy = built.kwargs["auto_wrap_policy"]
    encoder, _ = load_encoder(None)
    wrapped = [m for m in encoder.modules() if isinstance(m, tuple(policy._module_classes))]
    assert len(wrapped) == encoder.config.num_hidden_layers
    assert built.kwargs["use_orig_params"] is True  # LoRA: frozen and trainable parameters in one unit
    assert built.mixed_precision.param_dtype == torch.bfloat16 and built.mixed_precision.reduce_dtype == torch.float32
    assert built.sharding_strategy.name == (cfg.trainer.strategy.sharding_strategy)
    if GPU_ONLY:
        with pytest.raises(InstantiationException, match="requires a GPU accelerator"):
            build_trainer(cfg)


def sbatch_allocation() -> dict[str, int]:
    """The #SBATCH --nodes and --ntasks-per-node of scripts/slurm/train.sbatch."""
    header = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", SBATCH.read_text(), flags=re.M))
    return {"nodes": int(header["nodes"]), "ntasks-per-node": int(header["ntasks-per-node"])}


def test_a_slurm_rank_of_the_sbatch_allocation_is_read_from_srun_environment(tmp_path: Path, monkeypatch) -> None:
    allocation = sbatch_allocation()
    nodes, per_node = allocation["nodes"], allocation["ntasks-per-node"]
    rank = nodes * per_node - 1  # the last task: on the last node, the last GPU
    for key, value in {
        "SLURM_NTASKS": nodes * per_node,
        "SLURM_NTASKS_PER_NODE": per_node,
        "SLURM_NNODES": nodes,
        "SLURM_JOB_NAME": "medcoder-train",
        "SLURM_JOB_ID": 4242,
        "SLURM_NODELIST": "gpu[07-08]",
        "SLURM_PROCID": rank,
        "SLURM_LOCALID": per_node - 1,
        "SLURM_NODEID": nodes - 1,
    }.items():
        monkeypatch.setenv(key, str(value))
    # the overrides the script passes: the trainer takes its shape from the allocation
    cfg = compose_train(
        ["trainer=ddp_multinode", f"trainer.num_nodes={nodes}", f"trainer.devices={per_node}", *TINY], tmp_path
    )
    trainer = build_trainer(cfg)
    environment = trainer.strategy.cluster_environment
    assert isinstance(environment, SLURMEnvironment)
    assert (trainer.global_rank, trainer.local_rank, trainer.node_rank, trainer.world_size) == (
        rank,
        per_node - 1,
        nodes - 1,
        nodes * per_node,
    )
    assert environment.main_address == "gpu07"
