"""Notes are read to their end: serving chunks cover the accepted length, a note keeps its codes
after a long prefix of other text, and a note that still has to be cut says so (`truncated:<n>`,
routed to review) and is counted in evaluation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from export_support import TinyCoder

from medcoder.codes import describe, is_valid_code
from medcoder.codes.icd11 import Icd11Translator
from medcoder.data.chunking import Chunking, chunk_note, covering
from medcoder.data.labels import LabelSpace
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import NoteRecord
from medcoder.data.synth import generate_corpus
from medcoder.data.tokenizer import load_tokenizer
from medcoder.export.artifact import load_exported
from medcoder.inference.contract import ContractError, render_prediction, validate_contract_line
from medcoder.inference.predict import predict_notes
from medcoder.inference.routing import RoutingPolicy
from medcoder.metrics import evaluate_split

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def long_text() -> str:
    """About 20k characters of real-looking note text (synthetic notes one after the other)."""
    texts, size = [], 0
    for record in generate_corpus(40, seed=11)["train"]:
        texts.append(record.text)
        size += len(record.text)
        if size > 20_000:
            break
    return "\n\n".join(texts)


def test_serving_chunking_covers_every_accepted_character(long_text: str) -> None:
    tokenizer = load_tokenizer(None)
    trained = Chunking(chunk_size=128, chunk_overlap=16, max_chunks=3)
    cut = chunk_note(long_text, tokenizer, trained)
    assert cut.truncated and cut.chars_read < len(long_text) // 4
    read = chunk_note(long_text, tokenizer, covering(trained, len(long_text)))
    assert not read.truncated and read.chars_read == len(long_text.rstrip())
    assert covering(trained, 10).max_chunks == 3  # never fewer chunks than the model trained with


def test_a_note_after_a_long_prefix_of_other_text_is_read(tiny: TinyCoder, long_text: str) -> None:
    """The tiny model trained on 3 chunks of 128 tokens (~1.2k characters). Behind 7.4k characters
    of other notes, the note it codes used to be cut off unseen: the prediction was the prefix's
    alone. Now the whole text is read: the note changes the scores, and nothing is reported cut.
    (Whether every code survives the dilution is the trained model's quality, not the reading: the
    random tiny model's attention is near uniform.)"""
    coder = load_exported(tiny.export_dir)
    note = next(r for r in tiny.records if len(r.text) < 3000)
    prefix = long_text[:7400] + "\n\n"
    records = [NoteRecord(id="prefix", text=prefix), NoteRecord(id="prefixed", text=prefix + note.text)]
    (prefix_only, prefixed), scores = coder.predict_with_scores(records)
    assert prefix_only.read_chars is None and prefixed.read_chars is None
    assert not np.allclose(scores[0], scores[1], atol=1e-4), "the note after the prefix was never read"
    line = coder.predict_records([{"id": "prefixed", "text": prefix + note.text}])[0]
    assert "codes" in line and not any(r.startswith("truncated:") for r in line["review"]["reasons"])


def test_a_cut_note_says_so_is_routed_to_review_and_is_counted(tiny: TinyCoder, long_text: str) -> None:
    coder = load_exported(tiny.export_dir)
    records = [NoteRecord(id="long", text=long_text), NoteRecord(id="short", text=tiny.records[0].text[:250])]
    one_chunk = Chunking(chunk_size=128, chunk_overlap=16, max_chunks=1)
    predictions, scores = predict_notes(coder.net, records, coder.label_space.labels, one_chunk, coder.threshold)
    long, short = predictions
    assert short.read_chars is None and 0 < long.read_chars < len(long_text) // 10
    line = render_prediction(
        "long",
        long_text,
        long,
        model_info=coder.model_info,
        policy=RoutingPolicy(),
        translator=coder.translator,
        is_valid=is_valid_code,
        describe=describe,
    )
    assert line["review"]["required"] and f"truncated:{long.read_chars}" in line["review"]["reasons"]
    validate_contract_line(json.dumps(line), note_text=long_text, is_valid=is_valid_code)
    broken = {**line, "review": {"required": True, "reasons": ["truncated:0"]}}
    with pytest.raises(ContractError, match="truncated must give a positive number"):
        validate_contract_line(broken)

    space = coder.label_space
    result = evaluate_split(records, space, scores, coder.threshold, predictions=predictions)
    assert result.metrics["truncated_note_rate"] == 0.5


def test_the_contract_round_trip_keeps_the_truncation() -> None:
    from medcoder.evaluation.contract import prediction_from_line, score_contract_lines

    text = "Assessment: essential hypertension. " * 4
    record = NoteRecord(id="n1", text=text)
    pred = NotePrediction(id="n1", codes=(PredictedCode("ICD-10-CM", "I10", 0.9, ((12, 34),), True),), read_chars=40)
    line = render_prediction(
        "n1",
        text,
        pred,
        model_info={"name": "m", "version": "1", "run_id": None, "code_sets": {"ICD-10-CM": "x"}},
        policy=RoutingPolicy(),
        translator=Icd11Translator.packaged(),
        is_valid=is_valid_code,
        describe=describe,
    )
    assert line["review"]["reasons"][0] == "truncated:40"
    assert prediction_from_line(line).read_chars == 40
    scored = score_contract_lines([replace(record)], [line], label_space=LabelSpace.from_list([["ICD-10-CM", "I10"]]))
    assert scored.metrics["truncated_note_rate"] == 1.0
