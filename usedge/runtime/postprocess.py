"""Re-exports :mod:`usedge.data.decode` (model outputs -> challenge predictions; shared by training
evaluation, the export gate and the runtime)."""
from usedge.data.decode import (best_box, box_iou, class_map, decode, segmentation_map, softmax,  # noqa: F401
                                top_boxes)

__all__ = ["best_box", "box_iou", "class_map", "decode", "segmentation_map", "softmax", "top_boxes"]
