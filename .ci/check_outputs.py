"""After `pytest --nbmake --overwrite chapters`: what the executed chapters show is fit to read.

- every cell that glues a figure shows it as image/png, so a chapter launched as a plain notebook
  (Jupyter, Binder, Colab) shows its figures, not only the book;
- no output, and no value glued into the text, shows a numpy repr (`np.str_('00')`,
  `np.float64(0.9)`): print and glue plain Python values;
- no printed line that the book shows is wider than its code blocks (WIDTH characters on a
  desktop page): wider lines are cut off there until the reader scrolls sideways.
"""
import json
import re
import sys
from pathlib import Path

NUMPY_REPR = re.compile(r"\bnp\.\w+\(")
TEXT = ("text/plain", "text/html", "text/markdown")  # glued values too: their types end in these
WIDTH = 79
HIDDEN = {"remove-output", "remove-cell"}  # tags of cells whose outputs the book leaves out
problems, seen = [], 0
for path in sorted(Path("chapters").glob("*.ipynb")):
    for number, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        shown = not HIDDEN & set(cell.get("metadata", {}).get("tags", []))
        for out in outputs:
            printed = "".join(out.get("text", "")) if out.get("name") == "stdout" and shown else ""
            for line in printed.splitlines():
                if len(line) > WIDTH:
                    problems.append(f"{path.name} cell {number}: prints {len(line)} characters: {line[:50]!r}...")
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.endswith(TEXT)]
            for text in map("".join, texts):
                if found := NUMPY_REPR.search(text):
                    problems.append(f"{path.name} cell {number}: shows {text[found.start():found.start() + 40]!r}")
        source = "".join(cell["source"])
        wanted = source.count('glue("fig_')
        images = sum("image/png" in out.get("data", {}) for out in outputs)
        seen += min(images, wanted)
        if images < wanted:
            problems.append(f"{path.name} cell {number}: {images} of {wanted} figures as image/png")
print(f"{seen} figures shown as image/png in plain notebook outputs")
if problems:
    sys.exit("the executed chapters show:\n  " + "\n  ".join(problems))
