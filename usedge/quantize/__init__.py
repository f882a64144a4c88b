"""Quantization: task-balanced calibration sets, NNCF INT8 with signed symmetric Q/DQ, the per-task gate."""
