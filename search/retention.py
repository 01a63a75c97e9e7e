"""The run owns checkpoint retention: a trial's older checkpoints are deleted only once a stored experiment state no
longer names them.

Why not Tune's ``num_to_keep``: Tune deletes the older checkpoints the moment it registers a new one, before any
saved experiment state names the new one, so a driver that dies then (or a storage that refuses the state's upload
for a while) leaves a stored state naming a deleted checkpoint, and resume fails that trial ("Could not recover
from checkpoint as it does not exist on storage anymore"). To narrow that window Tune also snapshots the whole
experiment each time any trial checkpointed num_to_keep times: O(trials) per checkpoint. So the tuner keeps every
checkpoint it is given (num_to_keep=None) and, at each snapshot of Tune's experiment state (install):

1. wait for the previous snapshot's upload; if it was stored, delete what that snapshot no longer named;
2. drop from each trial's list in Tune every checkpoint but its latest (this snapshot then names only those);
3. take the snapshot.

A failed delete stays owed and is tried at the next stored snapshot; a new driver (a resume) owes every trial a
sweep, of what the dead driver left. A trial holds its latest named checkpoint and those it made since, plus, for
one snapshot period, the ones just superseded. ``NamedCheckpoints`` covers what is left: a restored trial whose
named checkpoint is missing all the same forgets it, and the trial resumes from its newest one on storage
(search.checkpoints) instead of failing.
"""

from __future__ import annotations

import functools
import logging
import posixpath
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs
from ray import tune

from search.checkpoints import newer_first

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Owed:
    """A trial's folder, on its filesystem, where every checkpoint older than `named` is to be deleted."""

    filesystem: pafs.FileSystem
    folder: str
    named: str  # the latest checkpoint's folder name (checkpoint_000007): it and the newer ones stay
    ended: bool = False  # the trial ended: only the named one and the newest stay (a resumed trial's can differ)

    def deletes(self, names: list[str]) -> list[str]:
        """Of a trial's checkpoint folders, newest first, those this allows to delete."""
        if self.ended:
            return [n for n in names[1:] if n != self.named]
        return [n for n in names if n < self.named]


class RunOwned(tune.CheckpointConfig):
    """The CheckpointConfig of our stages: Tune keeps every checkpoint (num_to_keep=None), and the run deletes the
    superseded ones (the module's docstring). Trials with any other CheckpointConfig keep Tune's own retention."""

    def __init__(self) -> None:
        super().__init__(num_to_keep=None)


class Retention:
    """One experiment's deletes: those the snapshot being uploaded will allow, and those still owed."""

    def __init__(self) -> None:
        self.first = True  # a new driver: sweep every trial once (a resumed run's leftovers)
        self.uploading: dict[str, Owed] = {}  # what the snapshot in flight allows, once stored
        self.owed: dict[str, Owed] = {}  # allowed by a stored snapshot, not yet deleted
        self.ended: set[str] = set()  # trials swept once since they ended
        self.deleter = ThreadPoolExecutor(1, thread_name_prefix="checkpoint-retention")
        self.deleting: Future | None = None

    def taking(self, trials: list[Any]) -> None:
        """Step 2, just before a snapshot: each trial's list in Tune is cut to its latest checkpoint, and what that
        allows is noted. A trial that ended is swept once more, of all but its latest and its newest on storage:
        a trial resumed from a newer checkpoint than Tune's latest (search.checkpoints) may end before it
        registers another, and the newest holds what it trained (its folder is not listed here, in Tune's loop)."""
        for trial in trials:
            manager = trial.run_metadata.checkpoint_manager
            if not isinstance(manager.checkpoint_config, RunOwned):
                continue
            latest = manager.latest_checkpoint_result
            ended = trial.status in (trial.TERMINATED, trial.ERROR) and trial.trial_id not in self.ended
            if ended:
                self.ended.add(trial.trial_id)
            elif latest is None or (len(manager._checkpoint_results) <= 1 and not self.first):
                continue
            if latest is None:
                self.uploading[trial.trial_id] = Owed(trial.storage.storage_filesystem, trial.storage.trial_fs_path,
                                                      "", ended=True)
                continue
            manager._checkpoint_results = [latest]  # Tune's list, ordered by registration (no score attribute)
            trial.invalidate_json_state()
            trial.run_metadata.invalidate_cache()
            checkpoint = latest.checkpoint
            self.uploading[trial.trial_id] = Owed(checkpoint.filesystem, posixpath.dirname(checkpoint.path),
                                                  posixpath.basename(checkpoint.path), ended)
        self.first = False

    def stored(self, wait: bool = False) -> None:
        """Step 1: the snapshot in flight is stored; delete what it no longer names (in the background, or wait)."""
        self.owed.update(self.uploading)
        self.uploading = {}
        self._delete(wait)

    def _delete(self, wait: bool) -> None:
        if self.deleting is not None:
            if not (wait or self.deleting.done()):
                return  # the last round is still deleting: the owed ones wait for the next snapshot
            self._settle(self.deleting.result())
        if self.owed:
            self.deleting = self.deleter.submit(_delete_older, dict(self.owed))
            if wait:
                self._settle(self.deleting.result())

    def _settle(self, deleted: dict[str, Owed]) -> None:
        self.deleting = None
        for trial_id, done in deleted.items():
            if self.owed.get(trial_id) == done:
                del self.owed[trial_id]


def _delete_older(owed: dict[str, Owed]) -> dict[str, Owed]:
    """Delete each trial's checkpoints older than its named one; the ones done (a failure stays owed)."""
    done = {}
    for trial_id, o in owed.items():
        try:
            for name in o.deletes(newer_first(o.filesystem, o.folder)):
                o.filesystem.delete_dir(posixpath.join(o.folder, name))
            done[trial_id] = o
        except OSError as e:
            log.warning("checkpoints of trial %s: not deleted yet (%s); tried again after the next snapshot",
                        trial_id, e)
    return done


class NamedCheckpoints(tune.Callback):
    """A restored trial whose named checkpoint is gone from storage forgets it, before Tune restores any trial from
    it: the trial then resumes from its newest checkpoint on storage (search.checkpoints), or starts afresh."""

    def __init__(self) -> None:
        self.checked = False

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        if self.checked:
            return
        self.checked = True
        for trial in trials:
            checkpoint = trial.checkpoint
            if trial.status == trial.TERMINATED or checkpoint is None:
                continue
            if checkpoint.filesystem.get_file_info(checkpoint.path).type == pafs.FileType.NotFound:
                print(f"trial {trial.trial_id}: its saved checkpoint {posixpath.basename(checkpoint.path)} is missing; "
                      "it resumes from its newest checkpoint on storage", flush=True)
                trial.run_metadata.checkpoint_manager._latest_checkpoint_result = None
                trial.run_metadata.checkpoint_manager._checkpoint_results = []
                trial.invalidate_json_state()
                trial.run_metadata.invalidate_cache()

    def __getstate__(self) -> dict:
        return {"checked": False}  # a restored experiment checks again


def install() -> None:
    """Wrap Tune's snapshot step (once per process): retention as above, and one upload at a time.

    Tune writes each snapshot into a staging folder while a background thread may still be copying the last one
    from there: a file the copy listed and the rewrite removed fails the copy, a file rewritten mid-copy arrives
    torn. So the step waits for the copy in flight before it saves, and that wait is what tells a stored snapshot.
    """
    from ray.tune.execution import experiment_state

    manager_class = experiment_state._ExperimentCheckpointManager
    sync_up = manager_class.sync_up_experiment_state
    if getattr(sync_up, "owns_retention", False):
        return

    @functools.wraps(sync_up)
    def sync_up_owning_checkpoints(self, save_fn, force: bool = False, wait: bool = False) -> None:
        retention = self.__dict__.setdefault("_conv3d_retention", Retention())
        controller = getattr(save_fn, "__self__", None)  # TuneController.save_to_dir

        def save() -> None:
            _upload_ended(self, retention)
            if controller is not None:
                retention.taking(controller.get_trials())
            save_fn()

        sync_up(self, save, force=force, wait=False)
        if wait:
            _upload_ended(self, retention, wait=True)

    sync_up_owning_checkpoints.owns_retention = True
    manager_class.sync_up_experiment_state = sync_up_owning_checkpoints


def _upload_ended(manager: Any, retention: Retention, wait: bool = False) -> None:
    """Wait for the snapshot upload in flight, then tell retention whether it was stored."""
    try:
        manager._storage.syncer.wait()
    except Exception:  # noqa: BLE001 - as Tune reports a failed upload: logged, and the next snapshot tries again
        logging.getLogger("ray.tune.execution.experiment_state").error(
            f"Saving experiment state to storage at '{manager._storage.experiment_fs_path}' failed with exception: ",
            exc_info=True)
        return  # what it allowed waits in retention.uploading for a stored snapshot, which names the same or newer
    retention.stored(wait)


