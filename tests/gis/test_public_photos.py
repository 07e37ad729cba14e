"""Residents' photos are checked by their content (Pillow), not by the name or type sent."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from gis.channels.errors import PublicInputError
from gis.channels.photos import MAX_PHOTOS, check_photo, check_photos

MB = 1024 * 1024


def _image(kind: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, kind)
    return out.getvalue()


@pytest.mark.parametrize(("kind", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_photos_of_the_accepted_kinds_pass_with_their_size(kind: str, mime: str) -> None:
    photo = check_photo(0, _image(kind), 5 * MB)
    assert (photo.mime, photo.width, photo.height) == (mime, 40, 30) and len(photo.sha256) == 64


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty"),
        (b"<html>not a photo</html>", "is not a valid image"),
        (_image("GIF"), "is GIF, not a JPEG, PNG or WebP image"),
        (_image("PNG")[:60], "is not a valid image"),  # truncated
    ],
)
def test_other_content_is_refused_naming_the_photo(content: bytes, reason: str) -> None:
    with pytest.raises(PublicInputError) as err:
        check_photos([_image("JPEG"), content], 5 * MB)
    assert err.value.field == "photos" and err.value.value == "#2"
    assert err.value.en == f"photo #2 {reason}" and err.value.zh.startswith("第2张照片")


def test_too_large_too_many_pixels_and_too_many_photos() -> None:
    big = _image("PNG", (300, 300))
    with pytest.raises(PublicInputError, match="at most"):
        check_photo(0, big, 100)
    bomb = _image("PNG", (8000, 6000))  # 48 megapixels: more than any phone photo
    with pytest.raises(PublicInputError) as err:
        check_photo(0, bomb, 50 * MB)
    assert "pixels" in err.value.en
    with pytest.raises(PublicInputError) as err:
        check_photos([_image("JPEG")] * (MAX_PHOTOS + 1), 5 * MB)
    assert err.value.value == MAX_PHOTOS + 1 and err.value.zh == "最多上传9张照片"
