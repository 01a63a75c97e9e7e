"""Search spaces: Python files that declare hyperparameters with keras-tuner's API, sampled by Optuna.

A space file (``spaces/*.py``) defines ``space(hp)`` and may define ``SEARCH``, a dict of `Settings`.
``space`` is define-by-run: it calls ``hp.Int``, ``hp.Float``, ``hp.Choice``, ``hp.Boolean`` and
``hp.Fixed`` with the names of ``search.params.PARAMS``, in ``hp.conditional_scope`` or under plain
Python control flow, e.g. ``for i in range(hp.Int("blocks", 1, 4)): hp.Int(f"filters_{i}", 8, 64)``;
its return value is ignored. ``read_space`` imports a file and checks its shape; ``search.bridge`` vets
it with a dry run (``load_space``) and samples it with Optuna for Ray's ``OptunaSearch``;
``search.settings`` holds ``SEARCH``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.machinery
import importlib.util
import inspect
import itertools
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from search.errors import UserError, one_line
from search.settings import Settings

if TYPE_CHECKING:
    import keras_tuner


@dataclass(frozen=True)
class Space:
    """A loaded and vetted space file. Pickles as its path, hash and settings: unpickling loads the file again."""

    path: Path
    sha256: str  # of the file's bytes, exactly the ones that ran
    settings: Settings
    define: Callable[[Any], object]  # the file's space(hp)

    def __reduce__(self):
        # Ray pickles the searcher, and with it this space, with plain pickle; a function loaded from
        # a file by path cannot be pickled by reference, so the file travels as its path. The settings
        # travel too: they may have been replaced since loading.
        return _reload, (self.path.absolute(), self.sha256, self.settings)

    def call(self, hp: keras_tuner.HyperParameters) -> None:
        """Call the file's space(hp); any exception becomes a UserError at the space file's line."""
        try:
            self.define(hp)
        except Exception as e:
            raise UserError(f"{_where(self.path, e)}: {one_line(e)}") from e

    def __copy__(self) -> Space:
        return self  # immutable; a copy must not load the file again

    def __deepcopy__(self, memo: dict) -> Space:
        return self


def _reload(path: Path, sha256: str, settings: Settings) -> Space:
    """Unpickle a Space; refuse a file that changed since, as the search would change under its trials.

    The bytes are the ones bridge.load_space vetted when the run started, so they are only read again."""
    space = read_space(path)
    if space.sha256 != sha256:
        raise UserError(f"{path}: changed since the search started (sha256 was {sha256}, is {space.sha256})")
    return dataclasses.replace(space, settings=settings)


_loads = itertools.count()  # unique module names, so loading a file twice never reuses a stale module


def read_space(path: str | os.PathLike[str]) -> Space:
    """Import a space file by path and check its shape: a ``space(hp)`` of one argument and a valid ``SEARCH``.

    Every problem is a one-line UserError naming the file (and the line when known): unreadable file,
    syntax error, exception while importing, no or bad ``space``, bad ``SEARCH``. What ``space(hp)``
    samples is vetted by bridge.load_space.
    """
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read space file: {e.strerror}") from None
    module = _import(path, source)
    define = getattr(module, "space", None)
    if define is None:
        raise UserError(f"{path}: defines no space(hp) function")
    if not callable(define):
        raise UserError(f"{path}: space must be a function space(hp), got {type(define).__name__}")
    try:
        inspect.signature(define).bind(None)
    except TypeError:
        line = getattr(getattr(define, "__code__", None), "co_firstlineno", None)
        raise UserError(f"{path}{f':{line}' if line else ''}: space must take one argument, hp") from None
    return Space(path, hashlib.sha256(source).hexdigest(), _settings(path, getattr(module, "SEARCH", {})), define)


def _import(path: Path, source: bytes) -> ModuleType:
    """Run the file's bytes as a new module (bytes we hashed, and no __pycache__ next to the spaces)."""
    name = f"_conv3d_space_{next(_loads)}"
    # An explicit loader accepts any file name, not only *.py.
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as e:
        raise UserError(f"{path}{f':{e.lineno}' if e.lineno else ''}: {e.msg}") from None
    except ValueError as e:  # e.g. null bytes
        raise UserError(f"{path}: {e}") from None
    sys.modules[name] = module  # while it runs, for code that looks its module up (dataclasses do)
    try:
        exec(code, module.__dict__)
    except Exception as e:
        raise UserError(f"{_where(path, e)}: {one_line(e)}") from e
    finally:
        del sys.modules[name]
    return module


def _settings(path: Path, search: object) -> Settings:
    """The file's SEARCH dict as Settings; errors name the file."""
    if not isinstance(search, Mapping):
        raise UserError(f"{path}: SEARCH must be a dict, got {type(search).__name__}")
    known = [f.name for f in fields(Settings)]
    for key in search:
        if key not in known:
            raise UserError(f"{path}: SEARCH has unknown key {key!r} (known: {', '.join(known)})")
    try:
        return Settings(**search)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None


def _where(path: Path, error: BaseException) -> str:
    """'path:line' of the innermost traceback frame in the space file, else 'path'."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == str(path)]
    return f"{path}:{lines[-1]}" if lines else str(path)
