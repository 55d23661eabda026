"""The contact sheet of mumo scenes in the docs: example images with a caption, their tags and a few questions.

    python scripts/scenes_contact_sheet.py [--out docs/images/scenes_contact_sheet.png] [--images 8] [--seed 0]

It generates a small set (the same generator as ``mumo data scenes``) in a temporary folder and draws its first
training images and one ``test-shift`` image in a grid, each with its first caption, its tags and three questions
with their answers.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mumo.data.scenes.dataset import generate, read_records

CELL_W, IMAGE_PX, TEXT_H, COLUMNS = 330, 192, 178, 3


def draw_cell(root: Path, record: dict, split: str) -> Image.Image:
    """One example: the image enlarged, then its caption, tags and three questions."""
    font = ImageFont.load_default(size=12)
    cell = Image.new("RGB", (CELL_W, IMAGE_PX + TEXT_H), "white")
    image = Image.open(root / record["image"]).convert("RGB").resize((IMAGE_PX, IMAGE_PX), Image.NEAREST)
    cell.paste(image, ((CELL_W - IMAGE_PX) // 2, 0))
    lines = [f"[{split}] {record['captions'][0]}", "tags: " + ", ".join(record["tags"])]
    lines += [f"Q: {q['question']}  A: {q['answer']}" for q in record["questions"][:3]]
    wrapped = [w for line in lines for w in textwrap.wrap(line, 52)]
    draw = ImageDraw.Draw(cell)
    for k, line in enumerate(wrapped[:12]):
        draw.text((6, IMAGE_PX + 4 + 14 * k), line, fill=(20, 20, 20), font=font)
    return cell


def contact_sheet(root: Path, n_train: int) -> Image.Image:
    """The first ``n_train`` training images and the first test-shift image of the set in ``root``."""
    examples = [(r, "train") for r in read_records(root, "train")[:n_train]]
    examples += [(r, "test-shift") for r in read_records(root, "test-shift")[:1]]
    cells = [draw_cell(root, r, s) for r, s in examples]
    rows = -(-len(cells) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * CELL_W, rows * cells[0].height), "white")
    for k, cell in enumerate(cells):
        sheet.paste(cell, ((k % COLUMNS) * CELL_W, (k // COLUMNS) * cell.height))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/scenes_contact_sheet.png"))
    parser.add_argument("--images", type=int, default=8, help="training images shown (one test-shift image follows)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "scenes"
        generate(root, n_images=max(40, 2 * args.images), seed=args.seed, workers=1)
        sheet = contact_sheet(root, args.images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
