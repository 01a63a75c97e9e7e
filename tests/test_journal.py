"""The records' journal (search.journal): parts cost what changed, replay is exact, compaction keeps it small."""

from __future__ import annotations

import json

from search import leaderboard
from search.journal import Journal
from search.rundir import RunDir


def _result(epoch: int, accuracy: float, status: str = "running") -> dict:
    return {"epoch": epoch, "loss": 1.0, "accuracy": accuracy, "val_loss": 1.0, "val_accuracy": accuracy, "status": status}


def test_each_part_holds_only_the_trials_that_changed_and_replay_gives_the_records_back(tmp_path):
    records, journal = leaderboard.Records(), Journal(tmp_path / "journal")
    assert not journal.exists() and journal.load() == {}
    for i in range(50):
        records.report(f"t{i:02d}", {"learning_rate": 1e-3 * (i + 1)}, "", _result(1, i / 100))
    journal.append(records.take_changed())
    records.report("t07", {}, "", _result(2, 0.9, "completed"))
    records.finish("t07")
    records.report("t08", {}, "", _result(2, 0.8))
    journal.append(records.take_changed())
    journal.append(records.take_changed())  # nothing changed: no part

    parts = sorted(p.name for p in (tmp_path / "journal").iterdir())
    assert parts == ["part-000000000.jsonl", "part-000000001.jsonl"]
    second = (tmp_path / "journal" / parts[1]).read_text().splitlines()
    assert [json.loads(line)["trial_id"] for line in second] == ["t07", "t08"]  # not the other 48
    replayed = leaderboard.Records.from_json(Journal(tmp_path / "journal").load())
    assert replayed.to_json() == records.to_json()
    assert replayed.trials["t07"].status == "completed" and sorted(replayed.trials["t08"].epochs) == [1, 2]


def test_compaction_leaves_one_base_and_a_crash_before_its_deletes_loses_and_repeats_nothing(tmp_path):
    records, folder = leaderboard.Records(), tmp_path / "journal"
    journal = Journal(folder)
    for epoch in (1, 2, 3):
        records.report("a", {"learning_rate": 0.01}, "", _result(epoch, epoch / 10))
        journal.append(records.take_changed())
    stale = (folder / "part-000000001.jsonl").read_text()
    journal.compact(records.to_json().values())
    assert sorted(p.name for p in folder.iterdir()) == ["base-000000003.jsonl"]

    # A driver that died between writing the base and deleting the parts it covers: the loader skips them.
    (folder / "part-000000001.jsonl").write_text(stale)
    assert sorted(Journal(folder).load()["a"]["epochs"]) == ["1", "2", "3"]
    # Parts after the base are replayed over it; a new Journal continues the numbering.
    later = Journal(folder)
    records.report("a", {}, "", _result(4, 0.5, "completed"))
    later.append(records.take_changed())
    assert (folder / "part-000000004.jsonl").is_file()
    assert leaderboard.Records.from_json(Journal(folder).load()).to_json() == records.to_json()


def test_records_load_the_journal_and_a_run_from_before_it_loads_its_trials_json(tmp_path):
    records = leaderboard.Records()
    records.report("old", {"learning_rate": 0.01}, "", _result(1, 0.3, "completed"))
    leaderboard.write(tmp_path, records)  # the views only, as a run made before the journal left them
    assert leaderboard.Records.load(tmp_path).to_json() == records.to_json()

    Journal(RunDir(tmp_path).journal).compact(records.to_json().values())
    records.report("new", {"learning_rate": 0.02}, "", _result(1, 0.4))
    Journal(RunDir(tmp_path).journal).append(records.take_changed())
    assert leaderboard.Records.load(tmp_path).to_json() == records.to_json()  # the journal wins over trials.json
