"""Ultrasound phantom: labelled B-mode images and cines for the 27 FMC-UIA tasks (see docs/phantom.md).

Pure numpy + OpenCV (no torch, no scipy). Anatomy is drawn in output pixels (labels exact there), imaged
through a simulated probe (speckle, PSF, attenuation, shadows, TGC, log compression, scan conversion).

>>> import numpy as np
>>> from usedge.data.phantom import generate_sample
>>> s = generate_sample("fetal_head", np.random.default_rng(0))
>>> s.image.shape, s.image.dtype, s.label.shape
((256, 256), dtype('uint8'), (256, 256))
"""
from __future__ import annotations

from usedge.data.phantom.cine import decode_rle, iter_cine, label_from_json, write_cine
from usedge.data.phantom.generator import PhantomConfig, PhantomSample, generate_dataset, generate_sample, sample_rng
from usedge.data.phantom.montage import draw_label, montage, write_montage
from usedge.data.phantom.physics import AcquisitionRanges

__all__ = ["AcquisitionRanges", "PhantomConfig", "PhantomSample", "decode_rle", "draw_label", "generate_dataset",
           "generate_sample", "iter_cine", "label_from_json", "montage", "sample_rng", "write_cine",
           "write_montage"]
