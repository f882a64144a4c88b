"""The browser demo (``usedge demo``): images, videos, DICOM cines and live webcam streams through a bundle, with
overlays, per-task results and latency. The logic, without Gradio: ``config`` (settings), ``uploads`` (reading
what a browser sends), ``core`` (the engine: one Predictor per backend × precision, drawing), ``tables``,
``sessions`` (video / cine processing, live webcam streams); ``examples`` the offline examples, ``app`` the
Gradio page. Runs without torch. See docs/demo.md.
"""
from usedge.demo.config import DemoConfig
from usedge.demo.core import DemoEngine

__all__ = ["DemoConfig", "DemoEngine"]
