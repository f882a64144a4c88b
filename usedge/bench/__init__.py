"""``usedge bench``: latency, size, memory and held-out accuracy of a bundle on every backend × precision × batch,
as one table (markdown, CSV, JSON, PNG), like ``yolo benchmark`` for multi-task bundles."""
from usedge.bench.harness import (
    COLUMNS,
    BenchResult,
    BenchRow,
    machine_info,
    run_bench,
    to_markdown,
    write_reports,
)

__all__ = ["COLUMNS", "BenchResult", "BenchRow", "machine_info", "run_bench", "to_markdown", "write_reports"]
