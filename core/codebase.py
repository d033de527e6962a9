"""What of neuroflow a piece of code needs, found from its own imports: the code a logged model or a Bento carries.

The folders at the top of the checkout (core/, models/, pipelines/, service/, cli/) are the `neuroflow` package, so a
module's file is found from its name, and what it imports from its relative imports.
"""

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "neuroflow"
# The folder that holds core/, models/, …: the checkout, or `site-packages/neuroflow` once installed.
ROOT = Path(__file__).resolve().parent.parent


def module_file(name: str) -> Path | None:
    """The file of the neuroflow module `name` (`neuroflow.models.schema`), or None if it is no module of ours."""
    head, _, rest = name.partition(".")
    if head != PACKAGE:
        return None
    if not rest:
        return ROOT / "__init__.py"  # the package's face
    base = ROOT.joinpath(*rest.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(name: str, path: Path) -> Iterator[str]:
    """Every neuroflow module `name` (at `path`) imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def module_closure(*entries: str) -> dict[str, Path]:
    """The neuroflow modules `entries` need to import, with the packages that hold them: name -> file."""
    found: dict[str, Path] = {}
    pending = list(entries)
    while pending:
        name = pending.pop()
        path = module_file(name)
        if name in found or path is None:
            continue
        found[name] = path
        pending.extend(imported_names(name, path))
        if parent := name.rpartition(".")[0]:
            pending.append(parent)
    return found


def stage_modules(directory: Path, *entries: str) -> Path:
    """Copy what `entries` import of neuroflow into `directory/neuroflow`, laid out as the installed package is.
    Returns that folder, for MLflow's `code_paths` (a model) or a Bento's build context (the service)."""
    package = directory / PACKAGE
    for path in module_closure(*entries).values():
        target = package / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return package
