"""Bundle files: a folder (optionally zipped) with the ONNX graphs, metadata.json holding everything a runtime
needs (tasks, input/output specs, preprocessing, precisions, calibration hash, accuracy and parity reports,
versions) and the sha256 of every file. See docs/bundle-format.md.

Written atomically (temp folder + rename); loading validates metadata.json into
:class:`~usedge.bundle.metadata.BundleMetadata` (schema version, migration, one error per field) and verifies
every checksum; zips are extracted once into a bounded, content-addressed cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from usedge._io import swap_in_dir
from usedge.bundle.metadata import (
    FRAME_GATE_FILE,
    INT8_CHECK_FILE,
    METADATA,
    MODEL_FILES,
    SCHEMA_VERSION,
    BundleMetadata,
)
from usedge.data.preprocess import PreprocessSpec
from usedge.errors import DataError

MAX_ZIP_BYTES = 2 << 30          # uncompressed size a bundle zip may expand to (largest real bundles: ~100 MB)
MAX_ZIP_MEMBERS = 1000
ZIP_CACHE = Path("~/.cache/usedge/bundles").expanduser()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_bundle(out: str | Path, files: dict[str, Path | bytes | str], metadata: dict, make_zip: bool = False) -> Path:
    """Write ``files`` (bundle name -> source path, bytes or text) and metadata.json atomically to ``out``.

    ``metadata["files"]`` gets the sha256 and size of every file. The finished metadata is validated by the same
    typed schema that loading applies (:class:`BundleMetadata`) before anything is published: a writer never
    produces a bundle its readers refuse. An existing bundle at ``out`` is replaced only when complete; anything
    else at ``out`` is refused.
    """
    out = Path(out)
    if out.exists() and not (out / METADATA).is_file() and any(out.iterdir()):
        raise DataError(f"{out} exists and is not a usedge bundle; refusing to replace it.", fix="choose another --out.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        listing = {}
        for name, src in files.items():
            dst = tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, bytes):
                dst.write_bytes(src)
            elif isinstance(src, str):
                dst.write_text(src)
            else:
                shutil.copyfile(src, dst)
            listing[name] = {"sha256": sha256_file(dst), "bytes": dst.stat().st_size}
        meta = {**metadata, "schema_version": SCHEMA_VERSION, "files": listing}
        _check_written(meta, tmp)
        (tmp / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
        swap_in_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if make_zip:
        zip_bundle(out, out.with_suffix(".zip"))
    return out


def _check_written(meta: dict, root: Path) -> BundleMetadata:
    """The metadata about to be written, through the loader's schema (and strict JSON: no NaN)."""
    try:
        json.dumps(meta, allow_nan=False)
        return BundleMetadata.from_dict(json.loads(json.dumps(meta)), root)
    except (DataError, ValueError, TypeError) as exc:
        raise DataError(f"refusing to write bundle metadata its readers would refuse: {exc}",
                        fix="this is a bug in the code that builds the metadata; please report it.") from None


def slim_bundle(src: str | Path, out: str | Path, precisions: tuple[str, ...] = ("int8",),
                note: dict | None = None) -> Path:
    """Copy the bundle at ``src`` to ``out`` with only ``precisions``' models (no torch/ weights, no parity inputs;
    the int8 check images stay with an int8 model):
    what a scanner or the packaged demo needs. Metadata (accuracy, gate, latency of the kept models) is kept;
    ``metadata["slim"]`` records what was dropped and ``note``."""
    bundle = load_bundle(src)
    unknown = [p for p in precisions if p not in bundle.precisions]
    if unknown or not precisions:
        raise DataError(f"bundle {bundle.path} has no {', '.join(unknown) or 'precision'} model to keep.",
                        fix=f"keep some of: {', '.join(bundle.precisions)}")
    keep = {MODEL_FILES[p] for p in precisions} | {"README.md", "report.md", FRAME_GATE_FILE}
    if "int8" in precisions:
        keep.add(INT8_CHECK_FILE)   # so each machine can check the int8 graph (usedge.backends.int8_check)
    files = {n: bundle.path / n for n in bundle.metadata["files"] if n in keep}
    dropped = sorted(n for n in bundle.metadata["files"] if n not in keep)
    meta = {k: v for k, v in bundle.metadata.items() if k not in ("files", "schema_version")}
    meta["precisions"] = [p for p in meta.get("precisions", bundle.precisions) if p in precisions]
    meta["latency"] = {k: v for k, v in meta.get("latency", {}).items() if k not in MODEL_FILES or k in precisions}
    meta["slim"] = {"from": str(src), "dropped": dropped, **(note or {})}
    return write_bundle(out, files, meta)


def zip_bundle(folder: Path, dst: Path) -> Path:
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.rglob("*")):
                if p.is_file():
                    z.write(p, p.relative_to(folder).as_posix())
        os.replace(tmp, dst)
    except BaseException:   # disk full, Ctrl-C: no half-written archive is left beside the bundle
        tmp.unlink(missing_ok=True)
        raise
    return dst


def extract_zip(path: Path, dst: Path) -> Path:
    """Extract a bundle zip, refusing members that would land outside ``dst``, archives that would expand
    beyond MAX_ZIP_BYTES / MAX_ZIP_MEMBERS (a zip bomb; counted as written, not trusted from the directory,
    which may lie) and damaged archives (bad CRC, truncated data): each a DataError, never a raw zipfile error."""
    root = dst.resolve()
    damaged = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)
    try:
        with zipfile.ZipFile(path) as z:
            infos = _checked_members(path, z.infolist(), root)
            written = 0
            for info in infos:
                written = _extract_member(z, info, root / info.filename, written, path)
    except damaged as exc:
        raise DataError(f"{path} is a damaged zip ({exc}).", fix="copy the bundle again, or re-export it.") from None
    return root


def _checked_members(path: Path, infos: list[zipfile.ZipInfo], root: Path) -> list[zipfile.ZipInfo]:
    total = sum(i.file_size for i in infos)
    if len(infos) > MAX_ZIP_MEMBERS or total > MAX_ZIP_BYTES:
        raise DataError(f"{path} would expand to {len(infos)} files / {total / 2**20:.0f} MiB, above the "
                        f"{MAX_ZIP_MEMBERS} files / {MAX_ZIP_BYTES / 2**20:.0f} MiB a bundle may have.",
                        fix="do not use this archive; re-export the bundle.")
    for info in infos:
        target = (root / info.filename).resolve()
        if root != target and root not in target.parents:
            raise DataError(f"{path} holds '{info.filename}', which points outside the bundle.",
                            fix="do not use this archive; re-export the bundle.")
    return infos


def _extract_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, written: int, path: Path) -> int:
    """Copy one member in 1 MiB pieces (zipfile checks its CRC at the end); the running total of bytes written
    is bounded by MAX_ZIP_BYTES whatever sizes the directory states."""
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return written
    target.parent.mkdir(parents=True, exist_ok=True)
    with z.open(info) as src, open(target, "wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > MAX_ZIP_BYTES:
                raise DataError(f"{path} expands past {MAX_ZIP_BYTES / 2**20:.0f} MiB while being extracted (its "
                                "directory understates the sizes).", fix="do not use this archive; re-export the bundle.")
            out.write(chunk)
    return written


def _extracted(path: Path) -> Path:
    """A zip bundle extracted once into ZIP_CACHE/<sha256 of the zip> (atomically; reused by later loads), so
    loading a zip neither leaves a new temporary folder behind each time nor re-extracts it."""
    folder = ZIP_CACHE / sha256_file(path)[:24]
    if (folder / METADATA).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=folder.parent))
    try:
        extract_zip(path, tmp)
        try:
            os.replace(tmp, folder)
        except OSError:            # another process extracted the same zip first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def check_metadata(metadata: object, root: Path) -> BundleMetadata:
    """Validate metadata.json before anything uses it (see :class:`BundleMetadata`); DataError naming the
    first problem."""
    return BundleMetadata.from_dict(metadata, root)


@dataclass
class Bundle:
    """An opened bundle: ``meta`` is the typed, validated metadata; ``metadata`` the raw JSON object (for the
    informational parts: reports, parity, provenance)."""

    path: Path
    metadata: dict
    meta: BundleMetadata | None = None

    def __post_init__(self) -> None:
        if self.meta is None:
            self.meta = BundleMetadata.from_dict(self.metadata, self.path)

    @property
    def tasks(self) -> list[str]:
        return self.meta.task_ids

    @property
    def preprocess(self) -> PreprocessSpec:
        return self.meta.input.preprocess

    @property
    def precisions(self) -> list[str]:
        return self.meta.precisions

    def model_path(self, precision: str = "int8") -> Path:
        if precision not in self.precisions:
            raise DataError(f"bundle {self.path} has no {precision} model.",
                            fix=f"use one of: {', '.join(self.precisions)}")
        return self.path / MODEL_FILES[precision]

    def file_sha256(self, name: str) -> str:
        """The sha256 the metadata records for file ``name`` (checked on load); "" when it has none."""
        return self.meta.files[name].sha256 if name in self.meta.files else ""


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Open a bundle folder or .zip; check schema version and (with ``verify``) every file's sha256."""
    path = Path(path)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path} is a file but not a zip bundle.",
                            fix="pass the bundle folder `usedge export` wrote, or its .zip (--zip).")
        path = _extracted(path)
    meta_path = path / METADATA
    try:
        metadata = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} is not a usedge bundle (no {METADATA}).", fix="pass the folder `usedge export` wrote.") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path} is not valid JSON ({exc.msg} at line {exc.lineno}): truncated or edited.",
                        fix="re-export the bundle.") from None
    except IsADirectoryError:
        raise DataError(f"{meta_path} is a folder, not the bundle's metadata file.", fix="re-export the bundle.") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{meta_path} is not UTF-8 text (byte {exc.start}): damaged or not a metadata file.",
                        fix="re-export the bundle.") from None
    except RecursionError:
        raise DataError(f"{meta_path} nests deeper than any metadata file does: damaged or hostile.",
                        fix="do not use this bundle; re-export it.") from None
    meta = check_metadata(metadata, path)
    if verify:
        for name, entry in metadata.get("files", {}).items():
            f = path / name
            if not f.is_file():
                raise DataError(f"bundle {path} is missing {name}.", fix="re-export the bundle.")
            if f.stat().st_size != entry["bytes"] or sha256_file(f) != entry["sha256"]:
                raise DataError(f"{f} does not match the checksum in {METADATA} (modified or truncated).",
                                fix="re-export the bundle; do not edit bundle files by hand.")
    return Bundle(path, metadata, meta)
