"""``rnn-bench new-variant NAME``: write a working variant file and its test from ``templates/``."""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from harness.errors import UsageError
from harness.plugins.registry import ROOT, registry

HERE = Path(__file__).resolve().parent / "templates"


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) or "Cell"


def check_name(name: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise UsageError(f"variant name {name!r} is not allowed: use lower-case letters, digits and _, "
                         "starting with a letter (it becomes a Python module and the variant's id)")  # fmt: skip
    reg = registry()
    if name in reg.variants or name in reg.aliases:
        owner = reg.variant_class(name)
        raise UsageError(f"variant id {name!r} already exists ({owner.source_file}); choose another name")
    return name


def write_new_variant(name: str, force: bool = False, root: Path = ROOT) -> list[Path]:
    """Write ``variants/NAME.py`` and ``tests/test_variant_NAME.py``; refuses to overwrite unless ``force``,
    and even then never replaces a file that defines another variant, nor takes an id another file has."""
    variant_file = root / "variants" / f"{name}.py"
    reg = registry()
    owner = reg.variant_class(name) if name in reg.variants or name in reg.aliases else None
    if not force or owner is None or Path(owner.source_file).resolve() != variant_file.resolve():
        check_name(name)
    others = sorted(
        v for v, cls in reg.variants.items() if Path(cls.source_file).resolve() == variant_file.resolve() and v != name
    )
    if others:
        raise UsageError(f"{variant_file} defines other variants ({', '.join(others)}); it is never overwritten")
    targets = {
        root / "variants" / f"{name}.py": HERE / "variant.py.tmpl",
        root / "tests" / f"test_variant_{name}.py": HERE / "test_variant.py.tmpl",
    }
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(map(str, existing))} already exist(s); use --force to overwrite")
    fields = {"name": name, "class_name": class_name(name)}
    for target, template in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(template.read_text()).substitute(fields))
    return list(targets)
