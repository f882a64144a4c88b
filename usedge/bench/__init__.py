"""``usedge bench``: latency, size, memory and held-out accuracy of a bundle on every backend × precision × batch,
as one table (markdown, CSV, JSON, PNG), like ``yolo benchmark`` for multi-task bundles; plus the Predictor's
pre / infer / post profile, scaling curves (input size, batch, tasks decoded) and live streaming rows."""
from usedge.bench.harness import COLUMNS, BenchResult, BenchRow, machine_info, run_bench
from usedge.bench.profile import (
           ProfileResult,
           ProfileRow,
           run_profile,
           write_profile_reports,
)
from usedge.bench.report import to_markdown, write_reports, write_scatter
from usedge.bench.scaling import (
           ScalingResult,
           ScalingRow,
           run_scaling,
           write_scaling_reports,
)
from usedge.bench.streaming import (
           StreamResult,
           StreamRow,
           run_stream_bench,
           write_stream_reports,
)

__all__ = ["COLUMNS", "BenchResult", "BenchRow", "ProfileResult", "ProfileRow", "ScalingResult", "ScalingRow",
           "StreamResult", "StreamRow", "machine_info", "run_bench", "run_profile", "run_scaling", "run_stream_bench",
           "to_markdown", "write_profile_reports", "write_reports", "write_scaling_reports", "write_scatter",
           "write_stream_reports"]
