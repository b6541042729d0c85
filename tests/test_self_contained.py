"""The repository stands alone: no tracked file names a path outside it.

A clone placed anywhere must work, so nothing may reach beside it (`../sibling/...`), into the
machine it was written on (`/work/...`), or cite a document that is not in it (`FINDINGS.md`).
"""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A relative path climbing with ../ (not part of a longer path or a URL).
CLIMB = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.-]+(?:/[\w.-]+)*)")
# The workplace this was written in.
WORKPLACE = re.compile(r"(?<![\w.-])/work/[\w.-]")
# A markdown document named by file name, with or without a folder.
DOCUMENT = re.compile(r"(?<![\w.-])((?:[\w.-]+/)*[\w-]+\.md)\b")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = []
    for name in filter(None, listed):
        path = REPO / name.decode()
        data = path.read_bytes() if path.is_file() else b""
        if b"\0" not in data[:8192]:
            files.append(path)
    return files


DOCUMENTS = {path.name for path in tracked_text_files() if path.suffix == ".md"}


def outside_references(path: Path, text: str) -> list[str]:
    """Each path in text that leads out of the repository, or to a document not in it."""
    found = []
    for match in CLIMB.finditer(text):
        if not (path.parent / match[1]).resolve().is_relative_to(REPO):
            found.append(match[1])
    found += [m[0] for m in WORKPLACE.finditer(text)]
    found += [m[1] for m in DOCUMENT.finditer(text) if Path(m[1]).name not in DOCUMENTS]
    return found


@pytest.mark.parametrize(
    ("where", "text", "expected"),
    [
        ("Makefile", "bash ../sibling/docker/engine.sh", ["../sibling/docker/engine.sh"]),
        (
            "deploy/k8s/overlays/dev/kustomization.yaml",
            "  - ../../../../../x",
            ["../../../../../x"],
        ),
        ("deploy/k8s/overlays/dev/kustomization.yaml", "resources:\n  - ../../base", []),
        ("service/runtime.py", "(FINDINGS.md, H200)", ["FINDINGS.md"]),
        ("README.md", "see /work/sibling/notes", ["/work/s"]),
        ("README.md", "bench/README.md", []),
        ("tests/http/test_ui.py", 'client.get("/docs/../../service/settings.py")', []),
    ],
)
def test_the_check_finds_what_leads_out(where, text, expected):
    assert outside_references(REPO / where, text) == expected


def test_no_tracked_file_names_a_path_outside_the_repository():
    offenders = {}
    for path in tracked_text_files():
        if path == Path(__file__):
            continue  # its examples name such paths on purpose
        found = outside_references(path, path.read_text(encoding="utf-8", errors="replace"))
        if found:
            offenders[str(path.relative_to(REPO))] = found
    assert offenders == {}
