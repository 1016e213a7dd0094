"""``claudekit.Image`` from a path, a URL or bytes, and the error for a file that is not an image."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import claudekit as ck

# A 1x1 red PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_a_path_a_url_or_bytes_just_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "red.png").write_bytes(PNG)
    monkeypatch.chdir(tmp_path)
    expected = ck.Image.from_path(tmp_path / "red.png")
    assert ck.Image("red.png") == expected == ck.Image(tmp_path / "red.png") == ck.Image(PNG)
    assert expected.source == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    assert ck.Image("https://example.org/a.png").to_block() == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.org/a.png"},
    }


def test_a_file_that_is_not_an_image_names_the_accepted_formats(tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not an image")
    with pytest.raises(ck.ClaudekitError) as info:
        ck.Image(fake)
    text = str(info.value)
    assert "is not an image the API takes (its name says image/png): it takes PNG, JPEG, GIF and WebP" in text
    assert "\n" not in text
    with pytest.raises(ck.ClaudekitError, match="cannot read image"):
        ck.Image(tmp_path / "missing.png")
    with pytest.raises(ck.ClaudekitError, match="cannot make an image from a int"):
        ck.Image(5)  # type: ignore[arg-type]
