"""The 27 FMC-UIA tasks and the output names used everywhere downstream.

Ids, kinds and class / point counts are the challenge's own (ISBI 2026 FMC-UIA baseline,
``TASK_CONFIGURATIONS``). Segmentation counts include background; regression counts are keypoints.
The challenge publishes no class names for most tasks: where a name below is ours, the task's
``names_invented`` is True and docs/tasks.md says so.

Output names are derived here, once, and used unchanged by the torch model, the ONNX graph,
TensorRT engines, runtime results and stream messages:

==============  =========================  ============================================
kind            output name                shape / meaning
==============  =========================  ============================================
segmentation    ``<task_id>.logits``       (N, C, h, w) class logits, h×w = input / output stride
classification  ``<task_id>.logits``       (N, C) class logits
detection       ``<task_id>.boxes``        (N, 4, h, w) per-cell xyxy box in [0, 1]
detection       ``<task_id>.objectness``   (N, 1, h, w) per-cell objectness logit
regression      ``<task_id>.points``       (N, K, 2) xy landmarks in [0, 1]
==============  =========================  ============================================

Segmentation logits come at the model's output stride (students: 4, the baseline: 1); post-processing
resizes logits to the ORIGINAL image (bilinear) before the argmax, so a stride-4 map costs one resize
instead of two and 16× less output memory (measured: 12.6 -> ~6 ms OpenVINO fp32 for all 27 tasks).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from usedge.errors import ConfigError
from usedge.registry import Registry


class TaskKind(str, Enum):
    """The four task kinds of the challenge."""

    SEGMENTATION = "segmentation"
    CLASSIFICATION = "classification"
    DETECTION = "detection"
    REGRESSION = "regression"

    @property
    def csv_name(self) -> str:
        """The ``task_name`` value the challenge's CSVs use (note the capital R of ``Regression``)."""
        return "Regression" if self is TaskKind.REGRESSION else self.value

    @property
    def folder(self) -> str:
        """Top-level data folder of this kind in the challenge layout."""
        return self.value.capitalize()

    @classmethod
    def from_csv(cls, name: str) -> "TaskKind":
        """Parse a CSV ``task_name`` (case-insensitive, so ``Regression`` and ``regression`` both work)."""
        for kind in cls:
            if kind.value == name.strip().lower():
                return kind
        valid = ", ".join(k.csv_name for k in cls)
        raise ConfigError(f"Unknown task_name '{name}'.", fix=f"use one of: {valid}")


#: The one output that is not a task's: the pooled backbone feature (N×C) of each frame, what the frame gate
#: (usedge.runtime.gate) measures the distance to the training data on. Added to a bundle's graphs at export.
EMBEDDING_OUTPUT = "frame.embedding"

#: Word used for segmentation sub-folders by class count: Segmentation/{Two,Three,Four,Five}/...
COUNT_WORDS = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}


@dataclass(frozen=True)
class OutputSpec:
    """One named model output.

    Attributes:
        name: the stable output name, e.g. ``fetal_head.logits``.
        task_id: the task it belongs to.
        field: ``logits`` | ``boxes`` | ``objectness`` | ``points``.
        shape: symbolic shape; ``N`` batch, ``h``/``w`` the output map size (input / stride), ints fixed.
    """

    name: str
    task_id: str
    field: str
    shape: tuple[str | int, ...]


@dataclass(frozen=True)
class TaskSpec:
    """One FMC-UIA task.

    Attributes:
        id: exact challenge task id.
        kind: segmentation | classification | detection | regression.
        organ: anatomy the task is about (used to balance calibration sets and group the demo).
        class_names: segmentation (incl. background), classification and detection class names.
        point_names: regression landmark names (empty otherwise).
        description: one line for humans.
        names_invented: True where the challenge gives no names and usedge chose them.
    """

    id: str
    kind: TaskKind
    organ: str
    class_names: tuple[str, ...] = ()
    point_names: tuple[str, ...] = ()
    description: str = ""
    names_invented: bool = False
    outputs: tuple[OutputSpec, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", _outputs_for(self.id, self.kind, self.num_classes, self.num_points))

    @property
    def num_classes(self) -> int:
        """Classes (segmentation: incl. background; detection: 1); 0 for regression."""
        return 0 if self.kind is TaskKind.REGRESSION else len(self.class_names)

    @property
    def num_points(self) -> int:
        """Landmarks (regression only)."""
        return len(self.point_names)

    @property
    def csv_num_classes(self) -> int:
        """The ``num_classes`` column of the challenge CSV (regression: the point count)."""
        return self.num_points if self.kind is TaskKind.REGRESSION else self.num_classes

    @property
    def data_folder(self) -> str:
        """Folder of this task's data relative to the split root, e.g. ``Segmentation/Two/fetal_head``."""
        if self.kind is TaskKind.SEGMENTATION:
            return f"{self.kind.folder}/{COUNT_WORDS[self.num_classes]}/{self.id}"
        return f"{self.kind.folder}/{self.id}"

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)


def _outputs_for(task_id: str, kind: TaskKind, num_classes: int, num_points: int) -> tuple[OutputSpec, ...]:
    if kind is TaskKind.SEGMENTATION:
        return (OutputSpec(f"{task_id}.logits", task_id, "logits", ("N", num_classes, "h", "w")),)
    if kind is TaskKind.CLASSIFICATION:
        return (OutputSpec(f"{task_id}.logits", task_id, "logits", ("N", num_classes)),)
    if kind is TaskKind.DETECTION:
        return (
            OutputSpec(f"{task_id}.boxes", task_id, "boxes", ("N", 4, "h", "w")),
            OutputSpec(f"{task_id}.objectness", task_id, "objectness", ("N", 1, "h", "w")),
        )
    return (OutputSpec(f"{task_id}.points", task_id, "points", ("N", num_points, 2)),)


def _seg(tid: str, organ: str, names: tuple[str, ...], desc: str, invented: bool = False) -> TaskSpec:
    return TaskSpec(tid, TaskKind.SEGMENTATION, organ, ("background", *names), (), desc, invented)


def _cls(tid: str, organ: str, names: tuple[str, ...], desc: str, invented: bool = False) -> TaskSpec:
    return TaskSpec(tid, TaskKind.CLASSIFICATION, organ, names, (), desc, invented)


def _det(tid: str, organ: str, name: str, desc: str) -> TaskSpec:
    return TaskSpec(tid, TaskKind.DETECTION, organ, (name,), (), desc, True)


def _reg(tid: str, organ: str, points: tuple[str, ...], desc: str) -> TaskSpec:
    return TaskSpec(tid, TaskKind.REGRESSION, organ, (), points, desc, True)


_CLOCK = ("anterior", "left_anterior", "left_transverse", "left_posterior",
          "posterior", "right_posterior", "right_transverse", "right_anterior")

#: All 27 tasks, in the challenge's order (regression, classification, detection, segmentation).
ALL_TASKS: tuple[TaskSpec, ...] = (
    _reg("FUGC", "cervix", ("internal_os", "external_os"), "cervical length end points"),
    _reg("IUGC", "intrapartum", ("symphysis_upper", "symphysis_lower", "head_tangent"),
         "intrapartum angle-of-progression landmarks"),
    _reg("fetal_femur", "fetus", ("femur_end_a", "femur_end_b"), "femur length end points"),
    _cls("breast_2cls", "breast", ("benign", "malignant"), "breast lesion benign vs malignant"),
    _cls("breast_3cls", "breast", ("normal", "benign", "malignant"), "breast image normal/benign/malignant"),
    _cls("fetal_head_pos_cls", "intrapartum", tuple(f"occiput_{c}" for c in _CLOCK),
         "fetal head position (occiput direction, 8 clock sectors)", True),
    _cls("fetal_plane_cls", "fetus", ("abdomen", "brain", "femur", "thorax", "maternal_cervix", "other"),
         "standard fetal plane"),
    _cls("fetal_sacral_pos_cls", "fetus", tuple(f"sacrum_{c}" for c in _CLOCK),
         "fetal sacrum position (8 clock sectors)", True),
    _cls("liver_lesion_2cls", "liver", ("benign", "malignant"), "focal liver lesion benign vs malignant"),
    _cls("lung_2cls", "lung", ("normal", "abnormal"), "lung normal vs abnormal (B-lines)", True),
    _cls("lung_disease_3cls", "lung", ("normal", "pneumonia", "covid19"), "lung normal/pneumonia/COVID-19"),
    _cls("organ_cls", "multi", ("breast", "thyroid", "liver", "kidney", "heart", "fetal_head"),
         "which organ is imaged", True),
    _det("spinal_cord_injury_loc", "spine", "injury", "spinal cord injury site"),
    _det("thyroid_nodule_det", "thyroid", "nodule", "thyroid nodule box"),
    _det("uterine_fibroid_det", "uterus", "fibroid", "uterine fibroid box"),
    _seg("breast_lesion", "breast", ("lesion",), "breast lesion"),
    _seg("cardiac_multi", "heart", ("lv_cavity", "lv_myocardium", "left_atrium"),
         "apical view: left ventricle, myocardium, left atrium"),
    _seg("carotid_artery", "carotid", ("artery",), "carotid artery lumen"),
    _seg("cervix", "cervix", ("cervix",), "cervix"),
    _seg("cervix_multi", "cervix", ("anterior_lip", "posterior_lip"), "cervical anterior/posterior lips", True),
    _seg("fetal_abdomen_multi", "fetus", ("abdomen", "stomach", "umbilical_vein", "spine"),
         "fetal abdominal circumference plane structures", True),
    _seg("fetal_head", "fetus", ("head",), "fetal head (skull ellipse)"),
    _seg("fetal_heart", "fetus", ("heart",), "fetal heart"),
    _seg("head_symphysis_multi", "intrapartum", ("pubic_symphysis", "fetal_head"),
         "intrapartum pubic symphysis and fetal head"),
    _seg("lung", "lung", ("lung",), "lung region"),
    _seg("ovary_tumor", "ovary", ("tumor",), "ovarian tumour"),
    _seg("thyroid_nodule", "thyroid", ("nodule",), "thyroid nodule"),
)

TASKS: Registry[TaskSpec] = Registry("task")
for _spec in ALL_TASKS:
    TASKS.register(_spec.id, _spec)


def get_task(task_id: str) -> TaskSpec:
    """Return the TaskSpec for an exact challenge task id (errors list the valid ids)."""
    return TASKS.get(task_id)


def parse_tasks(selection: str | list[str] | tuple[str, ...] | None) -> tuple[TaskSpec, ...]:
    """Turn ``"all"``, ``None``, a comma list, a kind name or an organ name into TaskSpecs.

    Examples: ``"all"``, ``"fetal_head,FUGC"``, ``"segmentation"``, ``"thyroid"``.
    """
    if selection is None or selection == "all":
        return ALL_TASKS
    items = selection.split(",") if isinstance(selection, str) else list(selection)
    chosen: dict[str, TaskSpec] = {}
    for raw in (i.strip() for i in items):
        if not raw:
            continue
        group = [t for t in ALL_TASKS if raw in (t.kind.value, t.organ)]
        for spec in group or [get_task(raw)]:
            chosen[spec.id] = spec
    if not chosen:
        raise ConfigError(f"No task selected by {selection!r}.", fix="pass 'all' or task ids like 'fetal_head,FUGC'.")
    return tuple(chosen.values())


def output_specs(tasks: tuple[TaskSpec, ...] = ALL_TASKS) -> tuple[OutputSpec, ...]:
    """All output specs of the given tasks, in task order."""
    return tuple(o for t in tasks for o in t.outputs)
