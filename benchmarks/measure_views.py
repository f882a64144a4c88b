"""Measurements on the wrong view: how often a view-checked measurement (HC, AC, FL, CL, lesion sizes, LV size) reports a value on
held-out phantom frames of its own task and of every other measured task, with the view check (the result holds
the view classifier: fetal_plane_cls, organ_cls) and without it (the same result with the classifier removed).

A task head answers on every frame; a value on another task's frame is a wrong answer nobody asked for (an AC on a
head section). Frames of another task that show the measurement's view (usedge.data.phantom.views: a cervix_multi
frame for the FUGC points' CL, a thyroid_nodule_det frame for the nodule mask's size) are left out of both counts.
The packaged default, all tasks in one pass per image.

    python benchmarks/measure_views.py --data data/phantom-test-4001 data/phantom-test-4002 data/phantom-test-4003
    python benchmarks/measure_views.py --bundle out/bundle --data data/phantom-tune-5001    # another bundle
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: the measurement of each view-checked task that the table counts (one per task: lesions give one per lesion)
COUNTED = {"HC": "fetal_head", "AC": "fetal_abdomen_multi", "FL": "fetal_femur",
           "breast_lesion.long_axis": "breast_lesion", "thyroid_nodule.long_axis": "thyroid_nodule",
           "thyroid_nodule_det.long_axis": "thyroid_nodule_det", "CL": "FUGC", "CL_mask": "cervix_multi",
           "LV_area": "cardiac_multi"}


def reported(ms, name: str) -> bool:
    return any(m.name == name and m.ok for m in ms)


def count_seed(predictor, data: Path) -> dict[str, dict[str, list[int]]]:
    """{measurement: {"own"/"other": [frames, reported unchecked, reported checked]}}."""
    from usedge.data.fmcuia import load_split
    from usedge.data.phantom.generator import phantom_scales
    from usedge.measure import measure
    from usedge.measure.agreement import measured_tasks
    from usedge.measure.compute import with_views
    from usedge.runtime.results import FrameResult

    scales = phantom_scales(data)
    tasks = with_views(sorted(measured_tasks()), predictor.tasks)
    views = set(tasks) - measured_tasks()
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"own": [0, 0, 0], "other": [0, 0, 0]})
    from usedge.data.phantom.views import view_label
    from usedge.measure.registry import MEASUREMENTS

    def same_view(name: str, task: str) -> bool:
        """A frame of another task that shows the measurement's view (a cervix_multi frame for the FUGC points'
        CL, a thyroid_nodule_det frame for the nodule mask's size): its value is not a wrong answer."""
        view = MEASUREMENTS.get(name.replace(".long_axis", ".size")).spec.view
        return view is not None and view_label(view.task, task) == view.label

    for s in load_split(data, "val", sorted(measured_tasks())):
        r = predictor(s.load_image(), tasks=tasks)
        bare = FrameResult(r.width, r.height, {k: v for k, v in r.tasks.items() if k not in views})
        mm = (scales or {}).get("val", {}).get(Path(s.image_path).stem)
        checked, unchecked = measure(r, mm), measure(bare, mm)
        for name, task in COUNTED.items():
            if s.task_id != task and same_view(name, s.task_id):
                continue
            row = out[name]["own" if s.task_id == task else "other"]
            row[0] += 1
            row[1] += reported(unchecked, name)
            row[2] += reported(checked, name)
    return out


def main(argv: list[str] | None = None) -> int:
    import usedge
    from usedge._cpu import native_isa

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--bundle", default=None, help="bundle (default: the packaged default)")
    args = ap.parse_args(argv)
    predictor = usedge.load(args.bundle)
    seeds = [count_seed(predictor, d) for d in args.data]
    print(f"{args.bundle or 'packaged default'} ({predictor.choice.backend} {predictor.choice.precision}); seeds "
          f"{', '.join(d.name for d in args.data)}; CPU {native_isa().label}\n")
    print("| measurement | own frames per seed | own reported, unchecked | own reported, checked | other frames per seed "
          "| other reported, unchecked | other reported, checked |")
    print("|---|---|---|---|---|---|---|")

    def pct(k: str, i: int, name: str) -> str:
        v = [100.0 * s[name][k][i] / max(1, s[name][k][0]) for s in seeds]
        return f"{np.mean(v):.1f} % ({min(v):.1f}–{max(v):.1f})"

    for name in COUNTED:
        print(f"| {name} | {seeds[0][name]['own'][0]} | {pct('own', 1, name)} | {pct('own', 2, name)} | "
              f"{seeds[0][name]['other'][0]} | {pct('other', 1, name)} | {pct('other', 2, name)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
