"""Click options whose defaults are the library's: each default is written once, where it belongs.

An option made with :func:`library_option` takes its default from a field of an options
dataclass (``VideoOptions``, ``InferenceOptions``, ``ExtractOptions``) or from a keyword
parameter of a library function. The dataclass or function is imported only when click needs
the default (to parse a command line or print its --help), so importing the CLI imports neither
torch nor PyAV.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import click


def library_default(owner: Any, name: str) -> Any:
    """The default of field ``name`` of dataclass ``owner``, or of keyword parameter ``name`` of function ``owner``."""
    if dataclasses.is_dataclass(owner):
        for field in dataclasses.fields(owner):
            if field.name == name:
                if field.default_factory is not dataclasses.MISSING:
                    return field.default_factory()
                return field.default
        raise LookupError(f"{owner.__name__} has no field {name!r}")
    default = inspect.signature(owner).parameters[name].default
    if default is inspect.Parameter.empty:
        raise LookupError(f"{owner.__name__}() has no default for {name!r}")
    return default


class LibraryDefault(click.Option):
    """An option whose default is :func:`library_default` of ``owner()`` and ``field`` (by default the option's name).

    Where that default is None because the library decides later (per device, per codec),
    ``shown()`` says what --help shows in its place, filling ``{default}`` in the help text.
    """

    def __init__(
        self, *args: Any, owner: Callable[[], Any], field: str | None = None, shown: Callable[[], object] | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        if "default" in kwargs:
            raise TypeError("a LibraryDefault option takes its default from the library, not from default=")
        kwargs.setdefault("show_default", shown is None)
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.field = field or self.name
        self.shown = shown

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        return library_default(self.owner(), self.field)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self.shown is None or self.help is None:
            return super().get_help_record(ctx)
        template = self.help
        self.help = template.format(default=self.shown())
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = template


def library_option(*param_decls: str, **kwargs: Any) -> Callable:
    """``click.option`` for a :class:`LibraryDefault` option (``owner=``, ``field=``, ``shown=``; ``type=`` unless a flag)."""
    is_flag = kwargs.get("is_flag") or any("/" in decl for decl in param_decls)
    if "type" not in kwargs and not is_flag:
        raise TypeError("give type=: click cannot infer it from a default it has not read yet")
    return click.option(*param_decls, cls=LibraryDefault, **kwargs)
