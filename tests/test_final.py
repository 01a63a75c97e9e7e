"""The final test's bookkeeping without training: a folder tested once is never tested again, and an extension whose
winner is unchanged copies the earlier final instead of reading the test set again (the training path itself:
test_search_e2e.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search import data, final
from search.resources import Resources
from search.rundir import FinalDir

PARAMS = {"filters": 8, "learning_rate": 0.001}


def _tested_folder(path, params=PARAMS, accuracy=0.9) -> FinalDir:
    out = FinalDir(path)
    path.mkdir()
    test_set = data.Volumes(np.zeros((4, 16, 16, 16), np.uint8), np.array([0, 1, 2, 3]))
    final.write_tested(out, b"model bytes", test_set, np.array([0, 1, 2, 2]), {"params": params, "accuracy": accuracy})
    return out


def test_an_unchanged_winner_copies_the_earlier_final_and_a_tested_folder_is_read_not_retested(tmp_path):
    earlier = _tested_folder(tmp_path / "final")
    assert earlier.predictions.read_text().splitlines() == ["row,digit,predicted", "0,0,0", "1,1,1", "2,2,2", "3,3,2"]
    out = FinalDir(tmp_path / "final-extend-1")
    no_data = tmp_path / "absent.h5"  # a copy reads no data at all
    assert final.test_once(PARAMS, no_data, out, Resources(), earlier) == 0.9
    assert out.tested() == {"params": PARAMS, "accuracy": 0.9, "copied_from": "final"}
    assert out.model.read_bytes() == b"model bytes" and out.predictions.read_bytes() == earlier.predictions.read_bytes()
    # Tested once: asked again (a resumed run), the folder's result is read, whatever the earlier folder says now.
    earlier.test_metrics.write_text(json.dumps({"params": PARAMS, "accuracy": 0.1}))
    assert final.test_once(PARAMS, no_data, out, Resources(), earlier) == 0.9


def test_a_changed_winner_is_not_copied_from_the_earlier_final(tmp_path):
    earlier = _tested_folder(tmp_path / "final")
    out = FinalDir(tmp_path / "final-extend-1")
    with pytest.raises(Exception):  # it goes to the retrain, which needs Ray and the data file: neither is here
        final.test_once({**PARAMS, "filters": 4}, tmp_path / "absent.h5", out, Resources(), earlier)
    assert out.tested() is None and not out.model.exists()
