"""The one place where ``bench`` turns errors into exit statuses.

Commands raise; they do not catch. :class:`HandledGroup` (the app's click group) wraps every command:

- an :class:`idbench.errors.IdbenchError` (bad input, unknown name, missing weights, ...) and :func:`fail`:
  ``error: <message>`` as one line on stderr, exit status 2 (what tests and scripts check);
- an ``OSError`` (disk full, read-only folder, ... while writing outputs or the cache): one line naming the path
  and the cause (:func:`idbench.errors.storage_error`), exit 2; a closed pipe (``bench list | head``) is left to
  typer (exit 1, no message);
- a missing module of an extra (``[bench]``, ``deepface``, ...): one line saying what to install, exit 2;
- Ctrl-C (``KeyboardInterrupt``): ``error: interrupted``, exit 130 (128 + SIGINT, as before);
- any other exception is a bug: it keeps its traceback.

typer's own usage errors (a missing argument, an unknown flag) keep typer's message and exit status 2.
"""

from __future__ import annotations

import errno
from typing import NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from idbench.errors import InputError


class CommandError(InputError):
    """A command's argument problem (:func:`fail`), with its exit status."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def fail(msg: str, code: int = 2) -> NoReturn:
    """Stop the command: ``error: msg`` on stderr, exit status ``code`` (2: an argument problem)."""
    raise CommandError(msg, code)


def error_exit(exc: BaseException) -> typer.Exit:
    """The one-line message and exit status of an error a command raised; re-raises what is a bug."""
    from idbench.errors import IdbenchError, storage_error

    if isinstance(exc, KeyboardInterrupt):
        return _echo("interrupted", 130)
    if isinstance(exc, IdbenchError):
        return _echo(str(exc), exc.code if isinstance(exc, CommandError) else 2)
    if isinstance(exc, ModuleNotFoundError):
        from .entry import BENCH_MODULES, missing_extra_message

        if (exc.name or "").split(".")[0] in BENCH_MODULES:
            typer.echo(missing_extra_message(exc), err=True)
            return typer.Exit(2)
    elif isinstance(exc, OSError) and exc.errno != errno.EPIPE:
        return _echo(str(storage_error(exc.filename, exc)) if exc.filename else (exc.strerror or str(exc)), 2)
    raise exc


def _echo(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


class HandledGroup(TyperGroup):
    """The ``bench`` group: every command it invokes runs inside :func:`error_exit`."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # typer's own exits and usage errors
            raise
        except (Exception, KeyboardInterrupt) as e:
            raise error_exit(e) from None

