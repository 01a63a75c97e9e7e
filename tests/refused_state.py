"""`python tests/refused_state.py FLAG ARGS...`: `python -m search.synthetic ARGS` on a storage that refuses Ray Tune's
experiment-state uploads (and only those: the trials' checkpoints still land) from the first stored snapshot that
names a checkpoint on; FLAG is written when the refusals begin. The outage of issue 35, made deterministic: the
stored state stays behind while the trials go on checkpointing."""

from __future__ import annotations

import sys
from pathlib import Path

from ray.train._internal.storage import _FilesystemSyncer
from ray.tune.execution.tune_controller import TuneController

from search import synthetic

flag = Path(sys.argv[1])
outage = {"arm": False, "on": False}
save_to_dir, sync_up_command = TuneController.save_to_dir, _FilesystemSyncer._sync_up_command


def save_noting_checkpoints(self, *args, **kwargs):
    save_to_dir(self, *args, **kwargs)
    if not outage["on"] and any(trial.checkpoint for trial in self.get_trials()):
        outage["arm"] = True  # this snapshot is uploaded; the ones after it are refused


def refusing_after_armed(self, local_path, uri, exclude=None):
    if outage["on"]:
        def refuse():
            raise OSError("the storage refused the upload (tests/refused_state.py)")
        return refuse, {}
    if outage["arm"]:
        outage["on"] = True
        flag.write_text("refusing")
    return sync_up_command(self, local_path, uri, exclude)


TuneController.save_to_dir = save_noting_checkpoints
_FilesystemSyncer._sync_up_command = refusing_after_armed
sys.exit(synthetic.main(sys.argv[2:]))
