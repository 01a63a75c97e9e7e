"""The run's Optuna study: Optuna's journal file, on the driver machine's disk.

Every storage call appends one line, and TPE reads the trials from memory (the file is replayed once, then
followed), so the study costs what each trial adds. Through SQLite, which the service used before, each ask
re-read every trial: 0.22 s at 1,000 trials against 0.03 s here (docs/benchmarks.md). The live file is
RunDir.study_local: the run folder's optuna.journal, or for a run in a bucket this machine's cache; a bucket
gets a copy at each stage's end (export), and Tune's searcher state can carry one (study_search.StudySearch).
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from search import files, storage
from search.rundir import RunDir
from search.storage import Location

WARM_START_ATTR = "warm_start_trial_id"  # a study trial's user attribute: told from an earlier run (search.warmstart)
TUNE_TRIAL_ATTR = "tune_trial_id"  # a study trial's user attribute: the Tune trial (and record) it proposed


def name(run_dir: Location) -> str:
    """The study's name: the run folder's."""
    return RunDir(run_dir).name


def journal_storage(path: Path) -> JournalStorage:
    """Optuna's storage in the journal file at path (made, with its folder, when first written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(UnsyncedJournal(path))


class UnsyncedJournal(JournalFileBackend):
    """Optuna's file journal, its lines appended under the same lock and in the same format, without an fsync
    after each storage call (about 24 a trial): those cost the driver 31 ms of wall a trial (cProfile, 400
    synthetic trials, 2026-12-04). A crashed process loses nothing (its lines are in the OS's cache); a
    crashed machine may lose the last lines, as it may Tune's own state."""

    def __init__(self, path: Path):
        self.path, self.lock = path, JournalFileSymlinkLock(str(path))
        super().__init__(str(path), lock_obj=self.lock)

    def append_logs(self, logs: list[dict]) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        self.lock.acquire()
        try:
            with open(self.path, "ab") as journal:
                journal.write(text.encode())
        finally:
            self.lock.release()


def live_storage(run_dir: Location) -> JournalStorage:
    """The run's live study storage; a run made before the journal has its SQLite study copied in once."""
    where = RunDir(run_dir)
    legacy = where.study_sqlite
    if not where.study_local.exists() and legacy is not None and legacy.is_file():
        put_back(where.path, legacy.read_bytes(), sqlite=True)
    return journal_storage(where.study_local)


def searcher_arguments(run_dir: Location) -> dict:
    """OptunaSearch's storage arguments: the run's study (created, or loaded on resume)."""
    return {"storage": live_storage(run_dir), "study_name": name(run_dir)}


def snapshot(run_dir: Location) -> bytes | None:
    """A consistent copy of the live study's journal (whole lines only); None if there is none."""
    local = RunDir(run_dir).study_local
    if not local.is_file():
        return None
    data = local.read_bytes()
    return data[:data.rfind(b"\n") + 1]  # a line being appended right now is not part of the copy


def put_back(run_dir: Location, data: bytes, sqlite: bool = False) -> None:
    """Make a snapshot the live study of this machine (a resume where the study never was); sqlite: the
    snapshot is a SQLite file's bytes, as runs made before the journal carried it."""
    local = RunDir(run_dir).study_local
    if not sqlite:
        return files.write_atomic(local, lambda tmp: tmp.write_bytes(data))
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'study.sqlite'}"
        (Path(directory) / "study.sqlite").write_bytes(data)
        journal = Path(directory) / local.name  # copied whole first: an interrupted copy leaves no half journal
        for summary in optuna.get_all_study_summaries(url):
            optuna.copy_study(from_study_name=summary.study_name, from_storage=url, to_storage=journal_storage(journal))
        files.write_atomic(local, lambda tmp: tmp.write_bytes(journal.read_bytes()))


def export(run_dir: Location) -> None:
    """For a run in a bucket, put a copy of the live study at RunDir.study, where the report and users find it."""
    where = RunDir(run_dir)
    data = None if where.local else snapshot(where.path)
    if data is not None:
        storage.write_bytes(where.study, data)


def load(run_dir: Location) -> optuna.Study | None:
    """The run's study to read (the report): the live one on this machine, else a bucket's copy, else None."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    where = RunDir(run_dir)
    if where.study_local.is_file() or (where.study_sqlite is not None and where.study_sqlite.is_file()):
        if not where.study_local.is_file():
            live_storage(where.path)  # a run made before the journal: its SQLite study copied in once
        return _only_study(_follower(str(where.study_local), where.study_local.stat().st_ino))
    if where.local or not storage.is_file(where.study):
        return None
    with tempfile.TemporaryDirectory() as directory:  # the bucket's copy, read into memory
        copy = Path(directory) / where.study.name
        copy.write_bytes(storage.read_bytes(where.study))
        bucket_copy = journal_storage(copy)
        study = _only_study(bucket_copy)
        if study is None:
            return None
        in_memory = optuna.storages.InMemoryStorage()
        optuna.copy_study(from_study_name=study.study_name, from_storage=bucket_copy, to_storage=in_memory)
        return optuna.load_study(study_name=study.study_name, storage=in_memory)


@functools.lru_cache(maxsize=4)
def _follower(path: str, inode: int) -> JournalStorage:
    """A reader of the journal at path: it replays the file once, then reads only the lines appended since, so a
    report rewritten through a search pays for the new trials, not the whole study (0.6 s at 1,000 trials). A
    file replaced whole (put_back) is a new inode, hence a new reader."""
    return journal_storage(Path(path))


def _only_study(storage_: JournalStorage) -> optuna.Study | None:
    names = optuna.get_all_study_names(storage_)
    return optuna.load_study(study_name=names[0], storage=storage_) if names else None
