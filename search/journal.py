"""The records' journal: the trials that changed, appended as small part files, so a result costs what it adds.

Each flush writes one new part holding the changed trials' whole records (JSON lines); replaying the parts in
order, the last line of each trial winning, rebuilds the records exactly. An object store cannot append, so a
part is a new object there and a new file on disk alike. ``compact`` folds every part into one base file
(``base-<N>.jsonl``: the records as of part N) and then deletes the parts it covers; a crash in between
leaves parts that the loader skips. trials.json and the CSVs are views rebuilt from the records at a
bounded cadence (search.record_keeper.RecordKeeper); this is what resume reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from search import storage
from search.retry import retry
from search.storage import Location

_NAME = re.compile(r"^(part|base)-(\d{9})\.jsonl$")


def _name(kind: str, index: int) -> str:
    return f"{kind}-{index:09d}.jsonl"


def _listing(folder: Location) -> tuple[int, list[tuple[int, str]]]:
    """(the newest base's index, or -1; the parts after it, in order, as (index, name))."""
    found = [(m[1], int(m[2]), name) for name in storage.children(folder) if (m := _NAME.match(name))]
    base = max((i for kind, i, _ in found if kind == "base"), default=-1)
    parts = sorted((i, name) for kind, i, name in found if kind == "part" and i > base)
    return base, parts


def _lines(records: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()


class Journal:
    """The journal in `folder`: append the changed records, read them all back, compact."""

    def __init__(self, folder: Location):
        self.folder = folder
        base, parts = _listing(folder)
        self.next_index = max([base, *(i for i, _ in parts)]) + 1

    def exists(self) -> bool:
        return self.next_index > 0

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """One new part with these records (trial dicts with a "trial_id"); nothing for none."""
        data = _lines(records)
        if data:
            storage.write_bytes(self.folder / _name("part", self.next_index), data)
            self.next_index += 1

    def load(self) -> dict[str, dict[str, Any]]:
        """trial_id -> its newest record: the newest base, then each later part in order (read again if a
        compaction removed a listed file meanwhile)."""
        # A compaction meanwhile deletes the parts its new base covers, so a listed file can be gone: listing
        # again finds that base. Three tries, no wait; then the FileNotFoundError is raised.
        return retry(self._read, FileNotFoundError, attempts=3)

    def _read(self) -> dict[str, dict[str, Any]]:
        base, parts = _listing(self.folder)
        names = ([_name("base", base)] if base >= 0 else []) + [name for _, name in parts]
        records: dict[str, dict[str, Any]] = {}
        for name in names:
            for line in storage.read_text(self.folder / name).splitlines():
                record = json.loads(line)
                records[record["trial_id"]] = record
        return records

    def compact(self, records: Iterable[dict[str, Any]]) -> None:
        """Replace every part and base with one base of `records` (all of them, current), then delete the rest."""
        index = self.next_index
        storage.write_bytes(self.folder / _name("base", index), _lines(records))
        self.next_index = index + 1
        for name in storage.children(self.folder):
            m = _NAME.match(name)
            if m and int(m[2]) < index:
                storage.remove(self.folder / name)
