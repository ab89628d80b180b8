"""The neural + TF-IDF blend: hashed TF-IDF equals scikit-learn's, ships as arrays without note words,
the blend weight is chosen on val, and a blended export predicts what the blended coder predicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from export_support import TinyCoder, tiny_coder
from sklearn.feature_extraction.text import TfidfVectorizer

from medcoder.data.chunking import covering
from medcoder.data.labels import LabelSpace, coding_label_space
from medcoder.data.schema import CodeAssignment, NoteRecord
from medcoder.data.synth import generate_corpus
from medcoder.export.artifact import LEXICAL_NAME, export_coder, load_exported
from medcoder.inference.manifest import TamperedArtifactError
from medcoder.inference.predict import predict_with_scores
from medcoder.inference.routing import RoutingPolicy
from medcoder.models.blend import ScoreBlend, fit_blend, tune_blend
from medcoder.models.lexical import HashedTfidf, LinearTfidfScorer
from medcoder.models.lit_module import CoderLitModule
from medcoder.models.tfidf_baseline import TfidfBaseline

torch.set_num_threads(2)
CANARY = "zyxwcanaryname"  # a "patient name" in one train note


def _notes(n: int, offset: int = 0) -> list[NoteRecord]:
    phrases = {"I10": "essential hypertension", "E11.9": "type 2 diabetes", "J18.9": "community acquired pneumonia"}
    combos = [["I10"], ["E11.9"], ["J18.9"], ["I10", "E11.9"], ["I10", "J18.9"]]
    out = []
    for i in range(offset, offset + n):
        codes = combos[i % len(combos)]
        name = CANARY if i == 0 else f"patient {i}"
        text = f"Visit of {name}. Assessment: {'; '.join(phrases[c] for c in codes)}. Follow up in {i % 7 + 1} weeks."
        out.append(NoteRecord(id=f"n{i}", text=text, codes=tuple(CodeAssignment("ICD-10-CM", c) for c in codes)))
    return out


def test_hashed_tfidf_gives_sklearns_tfidf_geometry():
    texts = [r.text for r in _notes(40)]
    ours = HashedTfidf(ngram_range=(1, 2), min_df=1).fit_transform(texts)
    reference = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32).fit_transform(texts)
    # same features up to the order of columns (no collisions among so few n-grams): same inner products
    assert ours.shape[1] == reference.shape[1]
    np.testing.assert_allclose((ours @ ours.T).toarray(), (reference @ reference.T).toarray(), atol=1e-5)


def test_min_df_drops_one_off_tokens():
    texts = [r.text for r in _notes(40)]
    once = HashedTfidf(min_df=1).fit_transform(texts).shape[1]
    twice = HashedTfidf(min_df=2).fit_transform(texts).shape[1]
    assert twice < once


def test_exported_scorer_scores_like_the_model_and_holds_no_note_words(tmp_path):
    train, test = _notes(60), _notes(15, offset=200)
    space = LabelSpace.from_records(train)
    model = TfidfBaseline(C=10.0, class_weight="balanced", features="hashed").fit(train, space)
    scorer = model.linear_scorer()
    np.testing.assert_allclose(scorer.predict_scores([r.text for r in test]), model.predict_scores(test), atol=1e-5)

    header = scorer.save(tmp_path / "lexical.safetensors")
    reloaded = LinearTfidfScorer.load(tmp_path / "lexical.safetensors", json.loads(json.dumps(header)))
    np.testing.assert_allclose(reloaded.predict_scores([r.text for r in test]), model.predict_scores(test), atol=1e-5)
    raw = (tmp_path / "lexical.safetensors").read_bytes()
    assert CANARY.encode() not in raw and b"hypertension" not in raw

    vocabulary_model = TfidfBaseline(C=10.0).fit(train, space)
    with pytest.raises(ValueError, match="note words"):
        vocabulary_model.linear_scorer()


def test_tune_blend_weighs_the_model_that_knows_more():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 6)) < 0.3).astype(np.int64)
    noise = rng.random(y.shape)
    neural = np.where(np.arange(6) < 3, 0.8 * y + 0.2 * noise, noise)  # right on labels 0-2 only
    lexical = np.where(np.arange(6) >= 3, 0.8 * y + 0.2 * noise, noise)  # right on labels 3-5 only
    weight, threshold, table = tune_blend(y, neural, lexical)
    assert 0.0 < weight < 1.0 and 0.0 < threshold < 1.0
    assert (
        table.loc[table["selected"], "val_micro_f1"].item() > table.loc[table["weight"] == 0.0, "val_micro_f1"].item()
    )
    # a lexical model that is pure noise gets weight 0: the blend never costs the neural coder
    assert tune_blend(y, 0.8 * y + 0.2 * noise, rng.random(y.shape))[0] == 0.0


# ---------------------------------------------------------------- packaged with the coder
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyCoder:
    return tiny_coder(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def coder_and_blend(tiny: TinyCoder) -> tuple[CoderLitModule, ScoreBlend, dict]:
    coder = CoderLitModule.load_trained(str(tiny.checkpoint))
    corpus = generate_corpus(60, seed=3)  # the tiny coder's corpus: same label space
    space = coding_label_space(corpus["train"], None, top_k=12)
    assert space.labels == coder.label_space.labels
    _, neural_val = predict_with_scores(coder, corpus["val"])
    blend, tables = fit_blend(corpus["train"], corpus["val"], space, neural_val, c_grid=(10.0,), min_df=1)
    return coder, blend, tables


def test_a_blended_export_predicts_what_the_blended_coder_predicts(coder_and_blend, tiny, tmp_path):
    coder, blend, tables = coder_and_blend
    assert list(tables) == ["C", "weight"] and tables["weight"]["selected"].sum() == 1
    blend = ScoreBlend(blend.lexical, 0.5)  # a weight that surely changes scores, whatever val chose
    folder = export_coder(coder, tmp_path / "blended", threshold=tiny.threshold, routing=RoutingPolicy(), blend=blend)
    config = json.loads((folder / "coder.json").read_text())
    assert config["blend"]["weight"] == 0.5 and config["blend"]["lexical"]["file"] == LEXICAL_NAME
    loaded = load_exported(folder)
    records = tiny.records[:6]
    predictions, scores = loaded.predict_with_scores(records)
    coder.chunking = covering(coder.chunking, loaded.max_chars)  # the export reads whole notes (issue 9)
    expected_predictions, expected = predict_with_scores(coder, records, tiny.threshold, blend=blend)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert [[c.code for c in p.codes] for p in predictions] == [[c.code for c in p.codes] for p in expected_predictions]
    _, neural = predict_with_scores(coder, records, tiny.threshold)
    assert not np.allclose(scores, neural, atol=1e-3)
    # evidence still comes from the neural attention: a blended code is grounded like a neural one
    assert any(c.evidence for p in predictions for c in p.codes)
    # the neural-only export has no blend
    assert load_exported(tiny.export_dir).blend is None


def test_a_changed_or_mislabelled_lexical_part_is_refused(coder_and_blend, tiny, tmp_path):
    coder, blend, _ = coder_and_blend
    folder = export_coder(coder, tmp_path / "blended", threshold=tiny.threshold, routing=RoutingPolicy(), blend=blend)
    data = bytearray((folder / LEXICAL_NAME).read_bytes())
    data[-1] ^= 0xFF
    (folder / LEXICAL_NAME).write_bytes(bytes(data))
    with pytest.raises(TamperedArtifactError, match=LEXICAL_NAME):
        load_exported(folder)
    narrower = ScoreBlend(
        LinearTfidfScorer(blend.lexical.features, blend.lexical.coef[:2], blend.lexical.intercept[:2]), 0.3
    )
    with pytest.raises(ValueError, match="scores 2 labels"):
        export_coder(coder, tmp_path / "other", threshold=tiny.threshold, routing=RoutingPolicy(), blend=narrower)


def test_blend_weight_outside_unit_interval_is_refused(coder_and_blend):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ScoreBlend(coder_and_blend[1].lexical, 1.5)
