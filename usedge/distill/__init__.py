"""Distillation: teachers -> compact shared-backbone student, on labelled and unlabelled frames."""
from usedge.distill.loop import DistillConfig, Distiller
from usedge.distill.losses import KDWeights
from usedge.distill.teachers import Teacher, TeacherSet, load_teacher

__all__ = ["DistillConfig", "Distiller", "KDWeights", "Teacher", "TeacherSet", "load_teacher"]
