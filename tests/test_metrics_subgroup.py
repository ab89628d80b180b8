"""f1_by_subgroup: the fairness table's numbers, per sex, age band, payer and setting."""

from __future__ import annotations

import numpy as np
import pytest

from medcoder.data.schema import NoteRecord
from medcoder.metrics.breakdowns import f1_by_subgroup


def test_each_group_is_scored_on_its_own_notes_and_missing_fields_give_no_rows():
    records = [NoteRecord("a", "x", sex="F", age=10, setting="outpatient"),
               NoteRecord("b", "x", sex="F", age=70, setting="outpatient"),
               NoteRecord("c", "x", sex="M", age=45, setting="inpatient")]  # fmt: skip
    y_true = np.array([[1, 0], [1, 1], [0, 1]])
    y_pred = np.array([[1, 0], [0, 1], [1, 1]])
    table = f1_by_subgroup(records, y_true, y_pred).set_index(["field", "group"])
    assert table.loc[("sex", "F"), ["n_notes", "tp", "fp", "fn"]].tolist() == [2, 2, 0, 1]
    assert table.loc[("sex", "M"), "micro_precision"] == pytest.approx(0.5)
    assert table.loc[("age_band", "0-17"), "micro_f1"] == pytest.approx(1.0)
    assert set(table.loc["age_band"].index) == {"0-17", "40-64", "65+"}
    assert "payer" not in table.index.get_level_values("field")  # no record has a payer
