"""The backend-sensitive test files (model, augmentation, pose) again under every other installed Keras backend.

Keras fixes its backend at import, so each backend gets one child pytest over these files (one start-up,
not one per file); a failure shows the child's failing test ids, which name the file.
"""

import pytest

from backends import OTHER_BACKENDS, rerun

# test_train.py is not here: `train` fits and tests through final.fit and final.test_model, which the JAX e2e
# test's `final` runs under JAX; the rest of it (its files, its refusals) does not depend on the backend.
BACKEND_SENSITIVE = ("tests/test_model.py", "tests/test_augment.py", "tests/test_pose.py")


@pytest.mark.long
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_under_other_backends(backend):
    rerun(backend, *BACKEND_SENSITIVE)
