"""Clinical measurements from a frame's results (the stage after ``runtime``, before ``stream``): fetal
biometry (HC, BPD, OFD, CI, AC, FL), the intrapartum angle of progression and head-symphysis distance, cervical
length, lesion sizes and left-ventricular size, in millimetres from the frame's physical scale, each declared in
one registry with the tasks it reads, its unit, its method and its source. A measurement whose inputs are missing
or implausible is withheld with the reason, never guessed; a frame without calibration gets lengths in px.

    from usedge.measure import measure
    for m in measure(result, frame.region):      # a DICOM frame's scan region carries mm per pixel
        print(m.name, m.value, m.unit, m.withheld or "")
"""
from __future__ import annotations

from usedge.measure.base import Measurement, MeasurementSpec, Scale
from usedge.measure.compute import measure
from usedge.measure.registry import MEASUREMENTS
from usedge.measure.tracker import MeasurementTracker, Measurer, Tracked

__all__ = ["MEASUREMENTS", "Measurement", "MeasurementSpec", "MeasurementTracker", "Measurer", "Scale", "Tracked",
           "measure"]
