#!/usr/bin/env python3
"""check_layers.py: each folder includes only the layers below it (DESIGN.md):
apps -> vae -> nn -> autograd -> engine. Fails naming every include that points upward."""
import re, sys
from pathlib import Path

ORDER = ["engine", "autograd", "nn", "vae", "apps"]  # each may include itself and those before it
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)

def main(root):
    root = Path(root)
    bad, files = [], 0
    for i, layer in enumerate(ORDER):
        allowed = set(ORDER[: i + 1])
        for f in sorted((root / layer).rglob("*")):
            if f.suffix not in (".h", ".hpp", ".cpp", ".cu", ".cuh"):
                continue
            files += 1
            for inc in INCLUDE.findall(f.read_text(errors="replace")):
                top = inc.split("/")[0]
                if top in ORDER and top not in allowed:
                    bad.append(f"{f.relative_to(root)} includes {inc}: {layer}/ may include only {sorted(allowed)}")
    for b in bad:
        print(b)
    print(f"check_layers: {files} files, {len(bad)} upward includes")
    return 1 if bad or files == 0 else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent))
