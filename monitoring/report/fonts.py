"""Report: fonts for the briefing PDF (a Unicode body font, and Thai/Khmer names rendered with shaping)."""

from __future__ import annotations

import functools
import io
import logging
import math
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

log = logging.getLogger(__name__)

Script = Literal["thai", "khmer"]

BODY = "BW-Sans"
BODY_BOLD = "BW-Sans-Bold"
BODY_ITALIC = "BW-Sans-Oblique"

# Searched in this order; the Noto fonts come with Debian's fonts-noto-core, the others are common fallbacks.
_SCRIPT_FILES: dict[Script, tuple[str, ...]] = {
    "thai": (
        "NotoSansThai-Regular.ttf",
        "NotoSansThaiUI-Regular.ttf",
        "NotoSerifThai-Regular.ttf",
        "Garuda.ttf",
        "Loma.ttf",
        "TlwgTypo.ttf",
    ),
    "khmer": (
        "NotoSansKhmer-Regular.ttf",
        "NotoSansKhmerUI-Regular.ttf",
        "NotoSerifKhmer-Regular.ttf",
        "KhmerOS.ttf",
        "KhmerOSsys.ttf",
        "KhmerOS_sys.ttf",
    ),
}
_FC_LANG: dict[Script, str] = {"thai": "th", "khmer": "km"}
_FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
)


@functools.lru_cache(maxsize=1)
def body_fonts() -> tuple[str, str, str]:
    """(regular, bold, italic) font names registered with reportlab.

    DejaVu Sans ships inside matplotlib, so it is there wherever the report runs; it covers the dashes, arrows
    and symbols the briefing uses, which the PDF core fonts do not. Falls back to Helvetica if it is missing.
    """
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    files = {BODY: "DejaVuSans.ttf", BODY_BOLD: "DejaVuSans-Bold.ttf", BODY_ITALIC: "DejaVuSans-Oblique.ttf"}
    try:
        for name, file in files.items():
            pdfmetrics.registerFont(TTFont(name, str(ttf / file)))
        pdfmetrics.registerFont(TTFont(BODY + "-BoldOblique", str(ttf / "DejaVuSans-BoldOblique.ttf")))
    except (
        Exception
    ) as e:  # reportlab raises TTFError or OSError; either way fall back, the text stays readable
        log.warning("DejaVu Sans not usable from %s (%s); the briefing falls back to Helvetica", ttf, e)
        return "Helvetica", "Helvetica-Bold", "Helvetica-Oblique"
    # So that <b> and <i> inside paragraphs pick the matching faces.
    addMapping(BODY, 0, 0, BODY)
    addMapping(BODY, 1, 0, BODY_BOLD)
    addMapping(BODY, 0, 1, BODY_ITALIC)
    addMapping(BODY, 1, 1, BODY + "-BoldOblique")
    return BODY, BODY_BOLD, BODY_ITALIC


def _fc_list(lang: str) -> list[Path]:
    exe = shutil.which("fc-list")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, f":lang={lang}", "file"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    paths = [Path(line.split(":")[0].strip()) for line in out.splitlines() if line.strip()]
    # Prefer sans, regular faces: they read best at small sizes.
    return sorted(paths, key=lambda p: ("Sans" not in p.name, "Regular" not in p.name, p.name))


@functools.lru_cache(maxsize=4)
def script_font(script: Script) -> Path | None:
    """A font file that covers the script, or None when none is installed."""
    for name in _SCRIPT_FILES[script]:
        for folder in _FONT_DIRS:
            if folder.is_dir():
                hit = next(iter(sorted(folder.rglob(name))), None)
                if hit:
                    return hit
    found = _fc_list(_FC_LANG[script])
    return found[0] if found else None


@functools.lru_cache(maxsize=1)
def shaping_available() -> bool:
    """Thai marks and Khmer subscripts need a shaping engine; Pillow's wheels bundle raqm (HarfBuzz)."""
    try:
        from PIL import features

        return bool(features.check("raqm"))
    except Exception:  # an old or partial Pillow: treat as no shaping
        return False


@functools.lru_cache(maxsize=8)
def _cmap(font: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont as FTFont

    try:
        with FTFont(str(font), fontNumber=0, lazy=True) as f:
            return frozenset((f.getBestCmap() or {}).keys())
    except Exception:  # unreadable font file: treat as covering nothing rather than draw boxes
        return frozenset()


def _neutral(c: str) -> bool:
    """Spaces and format characters: any font will do, they never decide the run's font."""
    return unicodedata.category(c) in ("Zs", "Cf", "Cc")


def _runs(text: str, fonts: list[Path]) -> list[tuple[str, Path]] | None:
    """Split text into runs, each drawn with the first font that has all its characters.

    Names mix the script with dashes, slashes and brackets that Noto Sans Thai/Khmer do not carry; those go to
    the body font. None if some character is in no font (it would show as a box).
    """
    runs: list[tuple[str, Path]] = []
    for c in text:
        if _neutral(c) and runs:
            runs[-1] = (runs[-1][0] + c, runs[-1][1])
            continue
        font = next((f for f in fonts if ord(c) in _cmap(f)), None)
        if font is None:
            return None
        if runs and runs[-1][1] == font:
            runs[-1] = (runs[-1][0] + c, font)
        else:
            runs.append((c, font))
    return runs


@dataclass(frozen=True)
class ScriptImage:
    png: bytes
    width_pt: float
    height_pt: float


def render_script(text: str, script: Script, *, size_pt: float = 11.0, dpi: int = 300) -> ScriptImage | None:
    """The text rendered with shaping as a transparent PNG, or None if it cannot be shown correctly.

    reportlab only shapes text with the optional uharfbuzz package, and unshaped Khmer is wrong, not just
    ugly, so names in these scripts are drawn by Pillow + raqm and placed as images.
    """
    if not text or not shaping_available():
        return None
    font_path = script_font(script)
    if font_path is None:
        return None
    body = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    runs = _runs(text, [font_path, body] if body.exists() else [font_path])
    if runs is None or not any(f == font_path for _, f in runs):
        return None
    from PIL import Image, ImageDraw, ImageFont

    px = round(size_pt * dpi / 72)
    pil_fonts = {f: ImageFont.truetype(str(f), px, layout_engine=ImageFont.Layout.RAQM) for _, f in runs}
    # One baseline for every run; line metrics (not the ink box) keep Thai and Khmer names the same height.
    up = down = 0
    widths: list[float] = []
    for chunk, f in runs:
        font = pil_fonts[f]
        left, top, right, bottom = font.getbbox(chunk, anchor="ls")
        ascent, descent = font.getmetrics()
        up, down = max(up, ascent, math.ceil(-top)), max(down, descent, math.ceil(bottom))
        widths.append(font.getlength(chunk))
    pad = max(1, px // 12)
    img = Image.new("RGBA", (math.ceil(sum(widths)) + 2 * pad, up + down), (255, 255, 255, 0))
    draw = ImageDraw.Draw(img)
    x = float(pad)
    for (chunk, f), w in zip(runs, widths, strict=True):
        draw.text((x, up), chunk, font=pil_fonts[f], fill=(0, 0, 0, 255), anchor="ls")
        x += w
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    scale = 72 / dpi
    return ScriptImage(buf.getvalue(), img.width * scale, img.height * scale)


def fonts_report() -> dict[str, str]:
    """What the report will use, for logs and the manifest."""
    return {
        "body": body_fonts()[0],
        "thai": str(script_font("thai") or "none"),
        "khmer": str(script_font("khmer") or "none"),
        "shaping": "raqm" if shaping_available() else "none",
    }
