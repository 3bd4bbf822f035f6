import io
import zipfile

import pytest
from PIL import Image

from common.images import MAX_PIXELS, ImageReadError
from common.images import decode as decode_image
from ranker.errors import StudioError
from ranker.intake import content_uid, extract_zip, intake_files

from .helpers import make_images


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    "img,fmt,kw",
    [
        (Image.new("RGBA", (8, 6), (1, 2, 3, 4)), "PNG", {}),
        (Image.new("CMYK", (8, 6), (1, 2, 3, 4)), "JPEG", {}),
        (Image.new("I;16", (8, 6), 40000), "PNG", {}),
        (Image.new("P", (8, 6), 3), "PNG", {}),
        (Image.new("L", (8, 6), 3), "WEBP", {}),
    ],
)
def test_modes_decode(img, fmt, kw):
    decoded, found = decode_image(_encode(img, fmt, **kw), "x")
    assert decoded.size == (8, 6) and found == fmt


def test_animated_gif_first_frame():
    frames = [Image.new("P", (5, 5), i) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    decoded, fmt = decode_image(buf.getvalue(), "anim.gif")
    assert fmt == "GIF" and decoded.size == (5, 5)


def test_exif_orientation_swaps_size():
    img = Image.new("RGB", (10, 4))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90
    decoded, _ = decode_image(_encode(img, "JPEG", exif=exif), "rot.jpg")
    assert decoded.size == (4, 10)


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty file"),
        (b"hello, not an image", "not an image"),
        (_encode(Image.new("RGB", (64, 64), (9, 9, 9)), "PNG")[:80], "corrupt or truncated"),
    ],
)
def test_bad_files_are_named_with_a_reason(data, reason):
    with pytest.raises(ImageReadError, match=reason) as exc:
        decode_image(data, "bad.png")
    assert exc.value.name == "bad.png"


def test_huge_dimensions_rejected():
    # A tiny file that claims a huge canvas: rejected before decoding.
    side = int(MAX_PIXELS**0.5) + 10
    data = _encode(Image.new("1", (side, side)), "PNG", optimize=True)
    with pytest.raises(ImageReadError, match="too large"):
        decode_image(data, "bomb.png")


def test_intake_reports_rejects_and_duplicates(tmp_path):
    paths = make_images(tmp_path / "a", 3)
    (tmp_path / "a" / "copy.png").write_bytes(paths[0].read_bytes())
    (tmp_path / "a" / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0 junk")
    files = sorted((tmp_path / "a").iterdir())
    report = intake_files(files)
    assert len(report.accepted) == 3
    assert [name.split("/")[-1] for name, _ in report.rejected] == ["junk.jpg"]
    assert len(report.duplicates) == 1
    assert "1 files rejected" in report.summary() and "junk.jpg" in report.summary()
    assert report.accepted[0].uid == content_uid(paths[0].read_bytes())


def test_zip_extraction_refuses_unsafe_paths(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escape.png", b"x")
    with pytest.raises(StudioError, match="unsafe path"):
        extract_zip(archive, tmp_path / "out")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(StudioError, match="not a readable zip"):
        extract_zip(bad, tmp_path / "out2")
