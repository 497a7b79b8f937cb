"""coprop.perf.provenance: notebook 07 says which commit and date the committed benchmark tables come from."""
from __future__ import annotations

import re

from coprop import perf
from coprop.paths import repo_root


def test_provenance_names_commit_and_date_or_file_time(tmp_path):
    committed = repo_root() / "reports" / "performance" / "throughput_cpu-2c.csv"
    line = perf.provenance(committed)
    assert re.fullmatch(r"throughput_cpu-2c\.csv: committed in [0-9a-f]{7,} on \d{4}-\d{2}-\d{2}", line), line
    loose = tmp_path / "mine.csv"
    loose.write_text("a\n1\n")
    assert re.fullmatch(r"mine\.csv: not committed; written \d{4}-\d{2}-\d{2} \d{2}:\d{2}", perf.provenance(loose))
    assert len(perf.provenance(f"{committed},{loose}").splitlines()) == 2
