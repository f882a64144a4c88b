"""Runtime: what runs on the scanner (no torch). Backends and the Predictor arrive with issue 6."""
