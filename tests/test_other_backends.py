"""The backend-sensitive test files (model, augmentation, train) again under every other installed Keras backend.

Keras fixes its backend at import, so each backend gets one child pytest over all three files (one start-up,
not one per file); a failure shows the child's failing test ids, which name the file.
"""

import pytest

from backends import OTHER_BACKENDS, rerun

BACKEND_SENSITIVE = ("tests/test_model.py", "tests/test_augment.py", "tests/test_train.py")


@pytest.mark.long
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_under_other_backends(backend):
    rerun(backend, *BACKEND_SENSITIVE)
