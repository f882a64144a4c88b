"""The bundle: the one artefact every stage after export shares (docs/bundle-format.md).

* :mod:`usedge.bundle.metadata` — metadata.json as typed, frozen data, its schema versions and migration;
* :mod:`usedge.bundle.files` — writing (atomic, checksummed, zip), loading (validated, path-confined, zips
  extracted once into a bounded cache);
* :mod:`usedge.bundle.engines` — the TensorRT engines a bundle carries in ``engines/``: cache keys,
  sidecars, and which engine fits this machine (no TensorRT needed);
* :mod:`usedge.bundle.verify` — the static checks (checksums, metadata, ``onnx.checker``, Q/DQ placement);
  ``usedge verify`` adds the runtime's one-frame and parity checks (:mod:`usedge.runtime.verify`).

Export writes bundles; the engine builder, the runtime, the bench and the demo read them through these types.
"""
from usedge.bundle.files import (
                                 MAX_ZIP_BYTES,
                                 MAX_ZIP_MEMBERS,
                                 ZIP_CACHE,
                                 Bundle,
                                 check_metadata,
                                 extract_zip,
                                 load_bundle,
                                 sha256_file,
                                 slim_bundle,
                                 write_bundle,
                                 zip_bundle,
)
from usedge.bundle.metadata import (
                                 FP16_FILE,
                                 FRAME_GATE_FILE,
                                 INT8_CHECK_FILE,
                                 METADATA,
                                 MODEL_FILES,
                                 SCHEMA_VERSION,
                                 BundleMetadata,
                                 FileEntry,
                                 InputInfo,
                                 Int8Info,
                                 OutputInfo,
                                 TaskInfo,
                                 migrate,
)

__all__ = ["FP16_FILE", "FRAME_GATE_FILE", "INT8_CHECK_FILE", "MAX_ZIP_BYTES", "MAX_ZIP_MEMBERS", "METADATA", "MODEL_FILES",
           "SCHEMA_VERSION", "ZIP_CACHE", "Bundle", "BundleMetadata", "FileEntry", "InputInfo", "Int8Info",
           "OutputInfo", "TaskInfo", "check_metadata", "extract_zip", "load_bundle", "migrate", "sha256_file",
           "slim_bundle", "write_bundle", "zip_bundle"]
