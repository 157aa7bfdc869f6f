"""Turn the generated syntax tree into source text and a live function.

The VJP is compiled inside a factory function whose parameters are the
runtime alias and the user's closure variables, only so that its code object
has those names as free variables. The factory never runs: the VJP function is
built from that code object with the user's own globals and closure cells, so
it reads later changes to either, exactly as the user's function does.

The compiled text is written to a file in a per-user cache folder and
registered in `linecache` under that file's name, so tracebacks and `pdb`
show generated lines.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import linecache
import logging
import os
import re
import stat
import tempfile
import types

import gast

from pullback.compiler.reverse import COMMENT_MARKER
from pullback.errors import InternalError

logger = logging.getLogger(__name__)

# A marker string statement, which ast.unparse prints in quotes, or in triple
# quotes when it is the first statement of a body and looks like a docstring.
_COMMENT_LINE = re.compile(
    r"^(\s*)(\"\"\"|'|\")" + re.escape(COMMENT_MARKER) + r"(.*)\2$"
)


def drop_orphan_comments(statements: list) -> list:
    """Remove comments that no longer precede a statement of their own."""
    kept = []
    for index, statement in enumerate(statements):
        if isinstance(statement, gast.If):
            statement.body = drop_orphan_comments(statement.body) or [gast.Pass()]
            statement.orelse = drop_orphan_comments(statement.orelse)
        elif isinstance(statement, gast.FunctionDef):
            statement.body = drop_orphan_comments(statement.body)
        if _is_comment(statement):
            following = statements[index + 1] if index + 1 < len(statements) else None
            if following is None or _is_comment(following):
                continue
        kept.append(statement)
    return kept


def _is_comment(statement) -> bool:
    return (
        isinstance(statement, gast.Expr)
        and isinstance(statement.value, gast.Constant)
        and isinstance(statement.value.value, str)
        and statement.value.value.startswith(COMMENT_MARKER)
    )


def to_source(node) -> str:
    """Unparse a gast tree, turning comment markers into `#` comments."""
    tree = gast.gast_to_ast(node)
    ast.fix_missing_locations(tree)
    text = ast.unparse(tree)
    lines = []
    for line in text.splitlines():
        match = _COMMENT_LINE.match(line)
        if match:
            indent, _quote, comment = match.groups()
            comment = comment.encode().decode("unicode_escape") if "\\" in comment else comment
            lines.append(f"{indent}# {comment}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


# The cache folder keeps at most this many files; the oldest go first.
_MAX_CACHED_FILES = 4096


@functools.cache
def _cache_folder() -> str | None:
    """Return this user's folder for generated files, or None if it is unsafe.

    The folder is private to the user (mode 0700), so no other user can put
    a file or symbolic link where pullback writes. It is checked, and pruned
    to `_MAX_CACHED_FILES`, once per process.
    """
    owner = os.getuid() if hasattr(os, "getuid") else None
    name = "pullback-generated" if owner is None else f"pullback-generated-{owner}"
    folder = os.path.join(tempfile.gettempdir(), name)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not _is_private(folder, owner):
            logger.debug("not writing generated source: %s is not private", folder)
            folder = None
        else:
            _prune(folder)
    except OSError as error:
        logger.debug("no folder for generated source: %s", error)
        folder = None
    return folder


def _is_private(folder: str, owner: int | None) -> bool:
    status = os.lstat(folder)
    if not stat.S_ISDIR(status.st_mode):
        return False  # A symbolic link or a file in the folder's place.
    if owner is None:  # Windows, where the temporary folder is usually per user.
        return True
    return status.st_uid == owner and not status.st_mode & 0o077


def _prune(folder: str) -> None:
    """Delete the oldest generated files beyond `_MAX_CACHED_FILES`."""
    entries = [entry for entry in os.scandir(folder) if entry.name.endswith(".py")]
    if len(entries) <= _MAX_CACHED_FILES:
        return
    entries.sort(key=_modified_time)
    for entry in entries[:len(entries) - _MAX_CACHED_FILES // 2]:
        with contextlib.suppress(OSError):  # Another process removed it first.
            os.unlink(entry.path)


def _modified_time(entry: os.DirEntry) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0  # Removed by another process: first in line anyway.


def _filename(source: str, label: str) -> str:
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    stem = re.sub(r"\W+", "_", label).strip("_")
    folder = _cache_folder()
    if folder is None:
        return f"<pullback {stem} {digest}>"
    path = os.path.join(folder, f"{stem}_{digest}.py")
    try:
        if not os.path.exists(path):
            _write_new(folder, path, source)
    except OSError as error:
        logger.debug("could not write generated source to %s: %s", path, error)
        return f"<pullback {stem} {digest}>"
    return path


def _write_new(folder: str, path: str, source: str) -> None:
    """Write `source` to `path` whole: through a new file, renamed into place.

    Another process writing the same file at once renames the same text.
    """
    handle, temporary = tempfile.mkstemp(suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(source)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def build_function(
    vjp_source: str,
    vjp_name: str,
    runtime_alias: str,
    runtime_module,
    user_function: types.FunctionType,
    closure_names: tuple[str, ...],
    label: str,
    constants: dict | None = None,
) -> tuple[types.FunctionType, str]:
    """Compile `vjp_source` and bind it to the user's globals and closure.

    Each name in `constants` becomes a free variable of the VJP bound to its
    value, as the runtime alias is.
    """
    constants = dict(constants or {})
    constants[runtime_alias] = runtime_module
    factory_params = ", ".join(tuple(constants) + tuple(closure_names))
    header = (
        "# Generated by pullback. The factory below only gives the VJP its free\n"
        "# variables; pullback builds the VJP from its code and never calls it.\n"
        f"def _pullback_factory({factory_params}):\n"
    )
    body = "".join("    " + line if line.strip() else line
                   for line in vjp_source.splitlines(keepends=True))
    text = header + body
    filename = _filename(text, label)
    code = compile(text, filename, "exec")
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)

    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    vjp_code = next(
        c for c in factory_code.co_consts
        if isinstance(c, types.CodeType) and c.co_name == vjp_name
    )
    cells = _cells(vjp_code, constants, user_function)
    function = types.FunctionType(
        vjp_code,
        user_function.__globals__,
        vjp_name,
        user_function.__defaults__,
        cells,
    )
    function.__kwdefaults__ = user_function.__kwdefaults__
    function.__qualname__ = vjp_name
    return function, filename


def _cells(code, constants: dict, user_function):
    user_cells = dict(zip(user_function.__code__.co_freevars,
                          user_function.__closure__ or (), strict=True))
    cells = []
    for free in code.co_freevars:
        if free in constants:
            cells.append(types.CellType(constants[free]))
        elif free in user_cells:
            cells.append(user_cells[free])
        else:
            raise InternalError(f"generated code has an unknown free variable {free!r}")
    return tuple(cells)
