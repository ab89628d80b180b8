"""What both Hydra jobs need before composing a config: the config folder, the resolvers the configs
use, and the embedded corpus generated where the data config expects it.

Resolvers: `${medcoder_root:}` (the checkout), `${medcoder_data_dir:}` (the reference-data folder),
`${medcoder_cpu_precision:}` (bf16 where the CPU has it natively), `${medcoder_default:NAME}` (the
shared defaults of `medcoder.defaults`, e.g. the embedded corpus size). Importing this module
registers them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from medcoder.defaults import config_value
from medcoder.paths import config_dir, project_root, shared_data_dir

log = logging.getLogger(__name__)
CONFIG_DIR = str(config_dir())
OmegaConf.register_new_resolver("medcoder_root", lambda: str(project_root()), replace=True)
# the reference-data folder, resolved the way `medcoder data status` reports it (medcoder.paths)
OmegaConf.register_new_resolver("medcoder_data_dir", lambda: str(shared_data_dir()), replace=True)


def cpu_precision() -> str:
    """Lightning precision for a CPU run: "bf16-mixed" where the CPU multiplies bfloat16 natively
    (AVX512-BF16 or AMX; ~1.4x faster training steps, scripts/bench_train_step.py), else "32-true",
    because emulated bfloat16 is slower than float32. Config: `precision: ${medcoder_cpu_precision:}`."""
    import torch

    native = (
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    )
    return "bf16-mixed" if native else "32-true"


OmegaConf.register_new_resolver("medcoder_cpu_precision", cpu_precision, replace=True)


def ensure_embedded_corpus(data_cfg: DictConfig, corpus_cfg: DictConfig) -> None:
    """Write the embedded corpus to `data.data_dir` when the run uses it (`corpus.generate`, default true) and it
    is not there yet, or was written by an older generator (`synth.corpus_is_current`). Note files the generator
    did not write (no stamp) are never overwritten: the run stops and says so, where it used to replace them
    with generated notes and train on those without a word."""
    if data_cfg.dataset != "embedded" or not corpus_cfg.get("generate", True):
        return
    from medcoder.data.synth import SPLITS, STAMP, corpus_is_current, write_corpus

    data_dir = Path(data_cfg.data_dir)
    if corpus_is_current(data_dir, int(corpus_cfg.notes), int(corpus_cfg.seed)):
        return
    theirs = [name for name in SPLITS if (data_dir / f"{name}.jsonl").is_file()]
    if theirs and not (data_dir / STAMP).is_file():
        raise ValueError(
            f"data.data_dir {data_dir} holds {', '.join(f'{n}.jsonl' for n in theirs)} that the embedded generator "
            f"did not write (no {STAMP}): set corpus.generate=false to train on those notes, or point data.data_dir "
            "at another folder for the generated corpus"
        )

    log.info("generating the embedded corpus (%d notes, seed %d) in %s", corpus_cfg.notes, corpus_cfg.seed, data_dir)
    write_corpus(data_dir, n_notes=int(corpus_cfg.notes), seed=int(corpus_cfg.seed))


OmegaConf.register_new_resolver("medcoder_default", config_value, replace=True)
