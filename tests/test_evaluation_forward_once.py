"""`evaluate_trained_coder` runs the coder over each split once: threshold tuning reads val's scores and val
is then grounded at the tuned threshold from the same forward pass; the scores are the ones a split-by-split
prediction gives."""

from __future__ import annotations

import numpy as np
from export_support import TinyCoder

from medcoder.evaluation.split import evaluate_trained_coder, threshold_grid
from medcoder.inference import predict as predict_module
from medcoder.inference.predict import predict_with_scores
from medcoder.models.lit_module import CoderLitModule


def test_each_split_goes_through_the_coder_once_and_scores_as_predicted_alone(tiny: TinyCoder, monkeypatch) -> None:
    coder = CoderLitModule.load_trained(str(tiny.checkpoint))
    half = len(tiny.records) // 2
    val, test = tiny.records[:half], tiny.records[half:]
    passes: list[tuple[str, ...]] = []
    forward_notes = predict_module.forward_notes

    def counted(net, records, *args, **kwargs):
        passes.append(tuple(r.id for r in records))
        return forward_notes(net, records, *args, **kwargs)

    monkeypatch.setattr(predict_module, "forward_notes", counted)
    evaluation = evaluate_trained_coder(
        coder, {"train": [], "val": val, "test": test}, verifier=None, grid=threshold_grid(), batch_size=4
    ).evaluation
    assert passes == [tuple(r.id for r in val), tuple(r.id for r in test)]
    monkeypatch.setattr(predict_module, "forward_notes", forward_notes)
    for name, records in (("val", val), ("test", test)):
        np.testing.assert_allclose(evaluation.scores[name], predict_with_scores(coder, records)[1], atol=1e-6)
