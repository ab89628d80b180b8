"""What the benchmark scripts share: where the model comes from, the batches they time, and a clock.

- `champion_uri` / `build_on_the_fly`: the registered champion when the tracking store has one, else an
  untrained coder exported and saved as a pyfunc (bench.py, bench_pyfunc_overhead.py);
- `forward_batches` / `bare_forward`: the network's forward alone, on the batches the pyfunc would make;
- `train_batches` / `RECIPE_NET`: training batches of the embedded corpus and the recipe's coder
  (configs/model/lora.yaml) (bench.py, bench_length_groups.py).
Imported by scripts run as `python scripts/NAME.py` (see bench_kit/__init__.py).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medcoder.data.chunking import Chunking, chunk_notes, pad_chunks  # noqa: E402
from medcoder.data.datamodule import CodingDataModule  # noqa: E402
from medcoder.data.labels import coding_label_space  # noqa: E402
from medcoder.data.schema import NoteRecord  # noqa: E402
from medcoder.data.synth import write_corpus  # noqa: E402
from medcoder.defaults import CHAMPION_URI  # noqa: E402
from medcoder.export.artifact import export_coder  # noqa: E402
from medcoder.export.mlflow_model import save_packaged_model  # noqa: E402
from medcoder.inference.predict import predict_with_scores  # noqa: E402
from medcoder.inference.routing import RoutingPolicy  # noqa: E402
from medcoder.models.coder import MedicalCoder  # noqa: E402
from medcoder.models.lit_module import CoderLitModule  # noqa: E402
from medcoder.paths import default_tracking_uri  # noqa: E402
from medcoder.serving.predict import ModelNotFoundError, check_store, registered_version  # noqa: E402

CODES_PER_NOTE = 4  # about what a trained coder predicts on the synthetic notes
# the embedded recipe's coder (configs/model/lora.yaml): LoRA r=16 on q,k,v,dense of the top 2 layers
RECIPE_NET: dict = {
    "finetune": "lora", "lora_r": 16, "lora_alpha": 32, "lora_target_modules": ["query", "key", "value", "dense"],
    "lora_layers": [-2, -1], "tagger_kernel": 5, "tagger_hidden": 128, "ngram_kernel": 3,
}  # fmt: skip
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # input_ids, attention_mask, token_mask


def timed(fn: Callable[[], object]) -> float:
    """Seconds `fn()` took."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def champion_uri() -> str | None:
    """`models:/medcoder@champion` when the default tracking store has it, else None."""
    uri = default_tracking_uri()
    try:
        check_store(uri)
        mlflow.set_tracking_uri(uri)
        registered_version(CHAMPION_URI, uri)
    except ModelNotFoundError:
        return None
    return CHAMPION_URI


def build_on_the_fly(encoder: str | None, notes: Sequence[NoteRecord], workdir: Path) -> str:
    """Export an untrained coder over `encoder` (label space: the 50 commonest codes of `notes`) and save it as
    a pyfunc folder; returns that folder. Its threshold lets about CODES_PER_NOTE codes per note fire, as after
    training, so grounding and rendering do the work they do for a trained model."""
    labels = coding_label_space(notes, None, top_k=50)
    torch.manual_seed(0)
    net = MedicalCoder(num_labels=len(labels), encoder=encoder, finetune="lora")
    coder = CoderLitModule(net=net, labels=labels.to_list(), optimizer=functools.partial(torch.optim.AdamW, lr=1e-3))
    _, scores = predict_with_scores(coder, notes)
    threshold = float(np.clip(np.quantile(scores, 1 - CODES_PER_NOTE / len(labels)), 0.01, 0.99))
    folder = export_coder(coder, workdir / "coder", threshold=threshold, routing=RoutingPolicy())
    return str(save_packaged_model(folder, workdir / "pyfunc"))


def forward_batches(net: MedicalCoder, texts: Sequence[str], chunking: Chunking, batch_size: int) -> list[Batch]:
    """The network's input for `texts` as the pyfunc batches it (length-sorted, `batch_size` notes), made once."""
    chunks = chunk_notes(list(texts), net.tokenizer, chunking)
    order = sorted(range(len(texts)), key=lambda i: chunks[i].n_tokens)
    batches = []
    for first in range(0, len(order), batch_size):
        batch = pad_chunks([chunks[i] for i in order[first : first + batch_size]], net.tokenizer.pad_token_id)
        batches.append((batch["input_ids"], batch["attention_mask"], batch["token_offsets"][..., 0] >= 0))
    return batches


@torch.no_grad()
def bare_forward(net: MedicalCoder, batches: Sequence[Batch]) -> None:
    """`MedicalCoder.forward` over `batches`, nothing else."""
    for input_ids, attention_mask, token_mask in batches:
        net(input_ids, attention_mask, token_mask)


def train_batches(n: int, data_dir: Path, batch_size: int = 8) -> tuple[list[dict[str, torch.Tensor]], list]:
    """`n` train batches (`batch_size` notes, length buckets as in training) of a 400-note embedded corpus
    (written to `data_dir` if missing), and its labels."""
    if not (data_dir / "train.jsonl").exists():
        write_corpus(data_dir, 400, seed=1)
    datamodule = CodingDataModule(dataset="embedded", data_dir=str(data_dir), batch_size=batch_size, seed=0)
    datamodule.setup("fit")
    out = []
    for batch in datamodule.train_dataloader():
        out.append(batch)
        if len(out) == n:
            break
    return out, datamodule.label_space.to_list()
