"""Runtime fixtures on top of the shared tiny bundle (tests/conftest.py::bundle_dir)."""
import pytest

TASKS = "fetal_head,cardiac_multi,organ_cls,thyroid_nodule_det,FUGC"  # tests/conftest.py::TINY_BUNDLE_TASKS


@pytest.fixture(scope="session")
def phantom_frames(bundle_dir):
    """(image, sample) pairs from the bundle's data set, one per task, at their stored size."""
    from usedge.data.fmcuia import load_split

    seen, out = set(), []
    for s in load_split(bundle_dir.parent / "data", "val", TASKS.split(",")):
        if s.task_id not in seen:
            seen.add(s.task_id)
            out.append((s.load_image(), s))
    return out
