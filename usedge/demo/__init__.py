"""The browser demo (``usedge demo``): images, videos, DICOM cines and live webcam streams through a bundle, with
overlays, per-task results and latency. ``core`` is the logic (no Gradio), ``examples`` the offline examples,
``app`` the Gradio page. Runs without torch. See docs/demo.md.
"""
from usedge.demo.core import DemoConfig, DemoEngine

__all__ = ["DemoConfig", "DemoEngine"]
