"""Third-party logs stay quiet unless asked for: ``usedge --verbose`` (or ``USEDGE_VERBOSE=1``) shows them.

NNCF logs every quantizer decision at INFO to stdout (hundreds of lines per export) and resets its logger to
INFO when imported, so :func:`tame` runs right after each optional import (``usedge.errors.require``) as
well as at start-up (:func:`configure`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile

ENV = "USEDGE_VERBOSE"
# logger name -> level it is held at when not verbose
QUIET = {"nncf": logging.WARNING, "openvino": logging.WARNING, "onnxruntime": logging.WARNING,
         "torch": logging.ERROR, "timm": logging.WARNING, "httpx": logging.WARNING, "urllib3": logging.WARNING,
         "matplotlib": logging.WARNING, "PIL": logging.WARNING, "gradio": logging.WARNING}


def verbose() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def configure(on: bool | None = None) -> None:
    """Set verbose mode (None: keep the environment's) and apply it to every known third-party logger."""
    if on is not None:
        os.environ[ENV] = "1" if on else "0"
    if verbose():
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
    for name in QUIET:
        tame(name)


def tame(module: str) -> None:
    """Hold ``module``'s logger at its quiet level (or INFO when verbose); ONNX Runtime's C++ log too."""
    root = module.split(".")[0]
    if root not in QUIET:
        return
    logging.getLogger(root).setLevel(logging.INFO if verbose() else QUIET[root])
    if root == "onnxruntime":
        ort = sys.modules.get("onnxruntime")
        if ort is not None and hasattr(ort, "set_default_logger_severity"):
            ort.set_default_logger_severity(1 if verbose() else 3)  # 3 = errors only


@contextlib.contextmanager
def native_stderr(what: str):
    """Hold what native code writes to file descriptor 2 inside the block (onnx-simplifier prints a
    "WARNING: failed to run ... skip" line per node it cannot fold, to stderr from C++), unless verbose. If the
    block raises, the held text is written out after all, so nothing that explains a failure is lost."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            text = held.read().decode("utf-8", "replace")
            if text:
                sys.stderr.write(f"[{what}, native output]\n{text}")
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
