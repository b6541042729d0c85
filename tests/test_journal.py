"""Journals on real files: one file per writer and window, found again, tailed, capped, pruned."""

import json
import subprocess
import sys
import time
from pathlib import Path

from service.journal import Journal, Tail

REPO = Path(__file__).resolve().parents[1]


def test_records_are_found_and_tailed(tmp_path):
    journal = Journal(tmp_path / "j", 600, 3600, 1 << 20)
    tail = Tail(journal)
    for i in range(5):
        assert journal.append({"id": f"r{i}", "n": i})
    assert journal.find("id", "r3") == {"id": "r3", "n": 3}
    assert journal.find("id", "r9") is None
    assert journal.find("id", "r") is None  # whole values only
    assert tail.new_records() == (False, [{"id": f"r{i}", "n": i} for i in range(5)])
    journal.append({"id": "r5", "n": 5})
    assert tail.new_records() == (False, [{"id": "r5", "n": 5}])
    assert tail.new_records() == (False, [])


def test_other_processes_write_their_own_files(tmp_path):
    """Two processes (workers, replicas) append; each has its file; a reader sees both."""
    journal = Journal(tmp_path / "j", 600, 3600, 1 << 20)
    journal.append({"id": "parent"})
    code = (
        "import sys; from pathlib import Path; from service.journal import Journal;"
        f"Journal(Path({str(tmp_path / 'j')!r}), 600, 3600, 1 << 20).append({{'id': 'child'}})"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
    assert len(journal.files()) == 2
    assert journal.find("id", "child") == {"id": "child"}
    assert journal.find("id", "parent") == {"id": "parent"}


def test_a_torn_line_is_skipped_and_completed_later(tmp_path):
    journal = Journal(tmp_path / "j", 600, 3600, 1 << 20)
    tail = Tail(journal)
    journal.append({"id": "a"})
    path = journal.files()[0]
    with open(path, "ab") as file:
        file.write(b'{"id": "b"')  # a writer mid-line
    assert tail.new_records() == (False, [{"id": "a"}])
    with open(path, "ab") as file:
        file.write(b"}\nnot json\n")
    assert tail.new_records() == (False, [{"id": "b"}])


def test_a_writer_stops_at_its_size_cap(tmp_path):
    journal = Journal(tmp_path / "j", 600, 3600, 200)
    written = [journal.append({"id": f"{i:03d}", "pad": "x" * 20}) for i in range(20)]
    assert written[0]
    assert not written[-1]
    assert journal.files()[0].stat().st_size <= 200


def test_old_windows_are_pruned_and_ignored(tmp_path):
    journal = Journal(tmp_path / "j", 1, 2, 1 << 20)
    tail = Tail(journal)
    old = tmp_path / "j" / str(int(time.time()) - 100)
    old.mkdir(parents=True)
    (old / "gone-1.jsonl").write_text(json.dumps({"id": "old"}) + "\n")
    assert journal.files() == []  # past retention: not read even before it is deleted
    journal.append({"id": "new"})
    assert not old.exists()
    assert tail.new_records()[1] == [{"id": "new"}]


def test_an_unwritable_folder_disables_writing_without_raising(tmp_path):
    (tmp_path / "blocker").write_text("a file where the journal's folder should be")
    journal = Journal(tmp_path / "blocker" / "j", 600, 3600, 1 << 20)
    assert journal.append({"id": "x"}) is False
    assert journal.broken is not None
    assert journal.find("id", "x") is None
