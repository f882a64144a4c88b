"""TensorRT engines built on the target from a bundle: ``usedge build BUNDLE --target ...``.

:mod:`usedge.engine.plan` decides everything in plain Python (version support, profile, precision plan, DLA,
timing-cache path) and is unit-tested without TensorRT; :mod:`usedge.engine.build` turns a plan into an engine
and :mod:`usedge.engine.runner` runs one, both through :mod:`usedge.engine.tensorrt`, the only module that
imports ``tensorrt`` (lazily). Importing this package imports neither TensorRT, CUDA nor torch.
See docs/tensorrt.md.
"""
