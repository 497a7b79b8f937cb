"""Every Python file of the package and the benchmarks stays under the developers' guide's 400 lines (issue 13):
a file that grows past it holds more than one concept and is split by concept, not cut in half."""
from __future__ import annotations

from coprop.paths import repo_root

LIMIT = 400


def test_package_and_benchmark_files_are_at_most_400_lines():
    root = repo_root()
    files = sorted(p for folder in ("coprop", "benchmarks") for p in (root / folder).rglob("*.py"))
    assert len(files) > 50, "the package was not found"
    long = {str(p.relative_to(root)): n for p in files if (n := len(p.read_text().splitlines())) > LIMIT}
    assert not long, f"over {LIMIT} lines (split by concept): {long}"
