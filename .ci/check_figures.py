"""After `pytest --nbmake --overwrite chapters`: every cell that glues a figure shows it as image/png.

So a chapter launched as a plain notebook (Jupyter, Binder, Colab) shows its figures, not only the book.
"""
import json
import sys
from pathlib import Path

missing, seen = [], 0
for path in sorted(Path("chapters").glob("*.ipynb")):
    for number, cell in enumerate(json.loads(path.read_text())["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or 'glue("fig_' not in source:
            continue
        wanted = source.count('glue("fig_')
        images = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        seen += images
        if images < wanted:
            missing.append(f"{path.name} cell {number}: {images} of {wanted} figures as image/png")
print(f"{seen} figures shown as image/png in plain notebook outputs")
if missing:
    sys.exit("figures missing from plain notebook outputs:\n  " + "\n  ".join(missing))
