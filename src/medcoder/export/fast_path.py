"""The coder's encoder on ONNX Runtime: an optional fast CPU serving path, float32 or dynamic int8.

    export_fast_encoder(net, folder, "onnx-int8")  -> folder/encoder-int8.onnx
    with_fast_encoder(net, path)                   -> a MedicalCoder whose encoder runs that file

Only the transformer encoder is exported; the heads (label attention, tagger, E/M) stay in torch. Why:
the encoder is nearly all of a forward's FLOPs, and what runs around it is data-dependent Python
(`MedicalCoder._encode_chunks` cuts chunks into length groups, skips all-pad chunks and scatters the
states back), which an exported graph would have to freeze. `OnnxEncoder` answers the same call as the
transformers encoder (`input_ids=`, `attention_mask=` -> `.last_hidden_state`), so chunking, length
groups, heads, grounding and rendering are the float path's own code: only the encoder's numbers differ.

Why the TorchScript exporter (`dynamo=False`) with eager attention, on torch 2.13 and onnxruntime 1.32
(measured with MiniLM, 8 chunks of 256 tokens, 2 threads): onnxruntime's BERT fusion
(`onnxruntime.transformers.optimizer`) turns the TorchScript graph of eager attention into its fused
`Attention`, `EmbedLayerNormalization`, `SkipLayerNormalization` and `BiasGelu` kernels, which
`quantize_dynamic` then runs in int8. The dynamo exporter's graph (with SDPA or eager attention) was not
fused (no `Attention` node), ran slower than torch itself, and needs onnxscript besides. The TorchScript
exporter is deprecated in torch 2.9+, so the exporter's warning is silenced here and
tests/test_fast_path.py checks that the exported graph still matches torch for several batch sizes
and lengths (batch and sequence are dynamic axes).

Why int8 is optional: dynamic quantisation moves the encoder's states (MiniLM has a few large
dimensions), so a code near the threshold can flip. Weights are quantised per output channel: on 8
MTSamples notes the mean cosine similarity of MiniLM's int8 states to the float ones was 0.989 per channel
against 0.932 per tensor, at the same speed. `scripts/bench.py` measures the share of notes whose
returned code set is identical to the float torch path's and recommends int8 only where it holds.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from medcoder.export.artifact import merged_encoder
from medcoder.models.coder import MedicalCoder

log = logging.getLogger(__name__)

FastPath = Literal["onnx-fp32", "onnx-int8"]
FAST_PATHS: tuple[str, ...] = ("onnx-fp32", "onnx-int8")
FILE_NAMES: dict[str, str] = {"onnx-fp32": "encoder.onnx", "onnx-int8": "encoder-int8.onnx"}
OPSET = 17  # onnxruntime's BERT fusion matches the TorchScript exporter's graph at this opset
_INPUTS = ("input_ids", "attention_mask")
_OUTPUT = "last_hidden_state"
_MISSING = "the ONNX fast path needs onnxruntime and onnx: pip install 'medcoder[fast]' ({error})"


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(_MISSING.format(error=err)) from None
    return onnxruntime


class _StatesOnly(nn.Module):
    """The encoder as a function of (input_ids, attention_mask) returning its last hidden states only."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_fast_encoder(net: MedicalCoder, out_dir: str | Path, fast_path: FastPath = "onnx-int8") -> Path:
    """Write `net`'s encoder (LoRA merged) as an ONNX file for `fast_path` in `out_dir` and return its path.

    "onnx-fp32": the fused float graph (`encoder.onnx`); "onnx-int8": that graph with its MatMul and
    Attention weights dynamically quantised to int8 (`encoder-int8.onnx`, the float file is kept beside it).
    """
    if fast_path not in FAST_PATHS:
        raise ValueError(f"fast_path must be one of {', '.join(FAST_PATHS)}, got {fast_path!r}")
    _onnxruntime()
    from onnxruntime.transformers.optimizer import optimize_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder = merged_encoder(net)  # a copy: the net's own encoder keeps its attention implementation
    encoder.set_attn_implementation("eager")  # the pattern onnxruntime's fusion recognises (module docstring)
    config = encoder.config
    # batch 2 and 16 tokens: sizes of 0 or 1 would be taken for constants by the tracer
    example = torch.full((2, 16), int(net.tokenizer.unk_token_id or 1), dtype=torch.int64)
    traced = out / "encoder-traced.onnx"
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, _OUTPUT)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(_StatesOnly(encoder), (example, torch.ones_like(example)), str(traced), dynamo=False,
                          opset_version=OPSET, input_names=list(_INPUTS), output_names=[_OUTPUT],
                          dynamic_axes=axes)  # fmt: skip
    fused = optimize_model(
        str(traced), model_type="bert", num_heads=int(config.num_attention_heads), hidden_size=int(config.hidden_size)
    )
    attention_nodes = fused.get_fused_operator_statistics().get("Attention", 0)
    if attention_nodes != int(config.num_hidden_layers):  # still correct, only slower
        log.warning("onnxruntime fused %d of %d attention layers", attention_nodes, config.num_hidden_layers)
    float_path = out / FILE_NAMES["onnx-fp32"]
    fused.save_model_to_file(str(float_path))
    traced.unlink()
    if fast_path == "onnx-fp32":
        return float_path
    return quantize_int8(float_path, out / FILE_NAMES["onnx-int8"])


def quantize_int8(
    float_path: Path, int8_path: Path, *, per_channel: bool = True, nodes_to_exclude: Sequence[str] = ()
) -> Path:
    """`float_path` (a fused encoder this module wrote) with its MatMul and Attention weights dynamically
    quantised to int8, written to `int8_path`; `nodes_to_exclude` (node names) stay in float."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the fused nodes are of onnxruntime's own domain, whose output types ONNX shape inference cannot tell
    quantize_dynamic(float_path, int8_path, weight_type=QuantType.QInt8, per_channel=per_channel,
                     nodes_to_exclude=list(nodes_to_exclude),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fmt: skip
    return int8_path


def quantizable_nodes(float_path: Path) -> list[str]:
    """Names of the nodes `quantize_int8` turns into int8 (fused Attention and MatMul), in graph order."""
    import onnx

    graph = onnx.load(str(float_path), load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type in ("Attention", "MatMul")]


class OnnxEncoder(nn.Module):
    """An ONNX Runtime session in the place of `MedicalCoder.encoder`: same keyword call, same output field.

    Spinning is off for the session's threads: between encoder calls torch runs the heads on the same
    cores, and threads that spin-wait for the next ONNX call would take those cores from it.
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        super().__init__()
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in self.session.get_inputs()]
        if sorted(names) != sorted(_INPUTS):
            raise ValueError(
                f"{self.path}: inputs {names} are not {list(_INPUTS)}: not an encoder this module exported"
            )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> BaseModelOutput:
        feed = {
            "input_ids": np.ascontiguousarray(input_ids.cpu().numpy(), dtype=np.int64),
            "attention_mask": np.ascontiguousarray(attention_mask.cpu().numpy(), dtype=np.int64),
        }
        (states,) = self.session.run([_OUTPUT], feed)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(states))


def with_fast_encoder(net: MedicalCoder, path: str | Path, threads: int | None = None) -> MedicalCoder:
    """A copy of `net` (heads copied, tokenizer shared) whose encoder is the ONNX file at `path`; `net` is unchanged."""
    fast = OnnxEncoder(path, threads)
    return copy.deepcopy(net, memo={id(net.encoder): fast, id(net.tokenizer): net.tokenizer}).eval()


def returned_codes(line: dict) -> frozenset[tuple[str, str]]:
    """The codes a contract line returns (its `codes` and its E/M level); an error entry returns none."""
    codes = {(c["system"], c["code"]) for c in line.get("codes", ())}
    em = line.get("em")
    if em:
        codes.add(("E/M", em["code"]))
    return frozenset(codes)


def code_set_agreement(reference: Sequence[dict], candidate: Sequence[dict]) -> float:
    """The share of notes whose returned code set is identical in `candidate` and `reference` (contract lines
    of the same notes, in the same order)."""
    if len(reference) != len(candidate) or not reference:
        raise ValueError(
            f"agreement needs the same non-zero number of lines, got {len(reference)} and {len(candidate)}"
        )
    return sum(returned_codes(a) == returned_codes(b) for a, b in zip(reference, candidate)) / len(reference)
