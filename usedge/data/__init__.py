"""Data: the FMC-UIA layout, the phantom generator, DICOM and video frames."""
