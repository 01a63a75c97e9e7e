"""A trial's checkpoints as they are on storage, newest first: what a resumed trial starts from.

Tune restores the checkpoint its saved state names, which can be older than the trial's newest (the state lags the
uploads), or none (a worker lost between an upload and Tune's registration of it; a named checkpoint that was
missing, see search.retention). Starting from the newest keeps a trial from training again what it had trained.
"""

from __future__ import annotations

import posixpath

import pyarrow.fs as pafs
from ray import tune

PREFIX = "checkpoint_"  # Tune's checkpoint folders in a trial's folder: checkpoint_000000, checkpoint_000001, ...


def newer_first(filesystem: pafs.FileSystem, folder: str) -> list[str]:
    """The names of the checkpoint folders in a trial's folder, newest first (none if it is missing)."""
    found = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted((posixpath.basename(i.path) for i in found
                   if i.type == pafs.FileType.Directory and posixpath.basename(i.path).startswith(PREFIX)), reverse=True)


def on_storage(registered: tune.Checkpoint | None) -> list[tune.Checkpoint]:
    """The running trial's checkpoints on storage, newest first: beside the one Tune restored, else in the trial's
    own folder; the registered one alone if its folder cannot be listed."""
    if registered:
        filesystem, folder = registered.filesystem, posixpath.dirname(registered.path)
    else:
        storage = tune.get_context().get_storage()
        filesystem, folder = storage.storage_filesystem, storage.trial_fs_path
    try:
        names = newer_first(filesystem, folder)
    except OSError:
        names = []
    if not names:
        return [registered] if registered else []
    return [tune.Checkpoint(posixpath.join(folder, name), filesystem) for name in names]
