"""A trial's checkpoints as they are on storage, newest first: what a resumed trial starts from.

Tune restores the checkpoint its saved state names, which can be older than the trial's newest (the state lags the
uploads), or none (a worker lost between an upload and Tune's registration of it; a named checkpoint that was
missing, see search.retention). Starting from the newest keeps a trial from training again what it had trained.
"""

from __future__ import annotations

import posixpath

import pyarrow.fs as pafs
from ray import tune

from search.rundir import CHECKPOINT_PREFIX, finalist_experiments


def newer_first(filesystem: pafs.FileSystem, folder: str) -> list[str]:
    """The names of the checkpoint folders in a trial's folder, newest first (none if it is missing)."""
    return sorted((n for n in _entries(filesystem, folder) if n.startswith(CHECKPOINT_PREFIX)), reverse=True)


def on_storage(registered: tune.Checkpoint | None, continues: str = "") -> list[tune.Checkpoint]:
    """The running trial's checkpoints on storage, newest first: beside the one Tune restored, else in the trial's
    own folder, else (a finalist that continues a dead driver's, protocol.CONTINUES_KEY) in the folders of that
    trial in the earlier finalist experiments, the newest experiment first; the registered one alone if its
    folder cannot be listed."""
    if registered:
        filesystem, folders = registered.filesystem, [posixpath.dirname(registered.path)]
    else:
        storage = tune.get_context().get_storage()
        filesystem, folders = storage.storage_filesystem, [storage.trial_fs_path]
        if continues:
            run_folder = posixpath.dirname(storage.experiment_fs_path)
            folders += [posixpath.join(run_folder, e, continues) for e in finalist_experiments(_entries(filesystem, run_folder))]
    for folder in folders:
        try:
            names = newer_first(filesystem, folder)
        except OSError:
            names = []
        if names:
            return [tune.Checkpoint(posixpath.join(folder, name), filesystem) for name in names]
    return [registered] if registered else []


def _entries(filesystem: pafs.FileSystem, folder: str) -> list[str]:
    """The names of the folders in folder."""
    found = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return [posixpath.basename(i.path) for i in found if i.type == pafs.FileType.Directory]


def number_after(newest: list[tune.Checkpoint]) -> None:
    """Number this trial's next checkpoint after the newest on storage: Tune numbers on from the one it restored,
    and would write the next into a newer folder that exists, so that a folder's name no longer told its age."""
    if newest:
        index = int(posixpath.basename(newest[0].path).removeprefix(CHECKPOINT_PREFIX))
        storage = tune.get_context().get_storage()
        storage.current_checkpoint_index = max(storage.current_checkpoint_index, index)  # Tune adds 1 before it writes
