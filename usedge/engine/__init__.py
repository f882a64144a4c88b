"""TensorRT engines built on the target from a bundle: ``usedge build BUNDLE --target ...``.

:mod:`usedge.engine.plan` decides everything in plain Python (profile, precision plan, DLA, cache key,
timing-cache path) and is unit-tested without TensorRT; :mod:`usedge.engine.tensorrt` is the only module
that imports ``tensorrt`` (lazily) and turns a plan into an engine, or runs one. Importing this package
imports neither TensorRT, CUDA nor torch. See docs/tensorrt.md.
"""
