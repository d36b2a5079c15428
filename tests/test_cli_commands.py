"""The ``bench`` command line as a whole: every command's --help, shared options defined once, one error handler,
a cheap start."""

import errno
import inspect
import subprocess
import sys
import typing

import pytest
import typer
from typer.testing import CliRunner

from idbench.bench.cli import app, options
from idbench.bench.cli.application import command_modules
from idbench.bench.cli.errors import HandledGroup, fail
from idbench.errors import InputError, UnknownNameError

EXPECTED = ["list", "embed", "run", "report", "prepare", "train", "swap", "estimate", "saliency", "encoder inspect"]


def _declarations(callback):
    """(parameter name, its typer OptionInfo/ArgumentInfo) for every parameter of a command callback."""
    hints = typing.get_type_hints(callback, include_extras=True)
    for name, param in inspect.signature(callback).parameters.items():
        meta = getattr(hints[name], "__metadata__", ())
        yield name, meta[0] if meta else param.default


def _flags(info):
    return set(options.option_flags(info)) if hasattr(info, "param_decls") else set()


def test_every_command_answers_help():
    runner = CliRunner()
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}, prog_name="bench")
    assert top.exit_code == 0, top.output
    for path in EXPECTED:
        assert path.split()[0] in top.output
        r = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"}, prog_name="bench")
        assert r.exit_code == 0, (path, r.output)
        assert f"Usage: bench {path} [OPTIONS]" in r.output
    assert sorted(m.NAME for m in command_modules().values()) == sorted(p.split()[-1] for p in EXPECTED)


def test_shared_options_are_declared_once_and_reused():
    shared = {flag: alias.__metadata__[0] for flag, alias in options.SHARED.items()}
    users = {flag: [] for flag in shared}
    for module in command_modules().values():
        for name, info in _declarations(module.command):
            for flag in _flags(info) & set(shared):
                # the very object of options.py, never a second declaration of the same flag
                assert info is shared[flag], f"bench {module.NAME} declares {flag} itself ({name})"
                users[flag].append(module.NAME)
            if "--out" in _flags(info):
                assert _flags(info) == set(options.OUT_FLAGS), module.NAME
    assert sorted(users["--device"]) == ["embed", "estimate", "inspect", "prepare", "run", "saliency", "swap", "train"]
    assert all(len(u) >= 2 for u in users.values()), users  # a shared option is shared


def test_shared_options_keep_each_commands_default():
    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "[default: auto]" in r.output.split("--device")[1].split("\n")[0]
    r = CliRunner().invoke(app, ["embed", "--help"], env={"COLUMNS": "200"})
    assert "[default: cpu]" in r.output.split("--device")[1].split("\n")[0]


def _demo_app(exc: BaseException) -> typer.Typer:
    demo = typer.Typer(cls=HandledGroup)

    @demo.command("boom")
    def boom():
        raise exc

    @demo.command("other")
    def other():
        pass

    return demo


@pytest.mark.parametrize("exc, line, code", [
    (InputError("--k takes a positive number, got 0"), "error: --k takes a positive number, got 0", 2),
    (UnknownNameError("encoder", "arcfase", ["arcface"]),
     "error: unknown encoder 'arcfase'. Did you mean: arcface?", 2),
    (OSError(errno.ENOSPC, "No space left on device", "/runs/x/results.json"),
     "error: cannot write /runs/x/results.json: disk full (errno 28)", 2),
    (KeyboardInterrupt(), "error: interrupted", 130),
    (ModuleNotFoundError("No module named 'cv2'", name="cv2"), "error: this needs the Python module 'cv2'", 2),
])
def test_errors_are_one_line_with_their_exit_status(exc, line, code):
    r = CliRunner().invoke(_demo_app(exc), ["boom"])
    assert r.exit_code == code
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), r.stderr
    assert r.stdout == ""


def test_fail_sets_the_exit_status():
    def stop():
        fail("merging several runs needs --out DIR", code=3)

    demo = typer.Typer(cls=HandledGroup)
    demo.command("stop")(stop)
    demo.command("other")(lambda: None)
    r = CliRunner().invoke(demo, ["stop"])
    assert (r.exit_code, r.stderr) == (3, "error: merging several runs needs --out DIR\n")


def test_a_bug_keeps_its_traceback():
    r = CliRunner().invoke(_demo_app(ZeroDivisionError("a bug")), ["boom"])
    assert isinstance(r.exception, ZeroDivisionError)  # not turned into a one-line "error:"
    assert "error:" not in r.stderr


def test_usage_errors_keep_typers_message():
    r = CliRunner().invoke(app, ["run", "--no-such-flag"])
    assert r.exit_code == 2 and "No such option" in r.output


def test_real_command_error_through_the_console_script():
    """The installed path (``python -m idbench.bench.cli``): one line on stderr, exit 2, nothing on stdout."""
    r = subprocess.run([sys.executable, "-m", "idbench.bench.cli", "list", "nosuch"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["error: cannot list 'nosuch': choose encoders, detectors, swappers, estimators, "
                                     "datasets or published"]
    assert r.stdout == ""


@pytest.mark.parametrize("args", [["--help"], ["list", "detectors"], ["run", "--help"]])
def test_help_and_list_do_not_load_torch(args):
    code = ("import sys; sys.argv = ['bench'] + sys.argv[1:]\n"
            "from idbench.bench.cli.entry import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = [m for m in ('torch', 'cv2', 'onnxruntime') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_developer_scripts_take_the_shared_definitions():
    import argparse

    p = argparse.ArgumentParser()
    options.add_argument(p, options.Device, default="auto")
    options.add_argument(p, options.Progress, default=True)
    options.add_argument(p, options.Detector, default="auto")
    a = p.parse_args(["--device", "cpu", "--no-progress", "-d", "mtcnn"])
    assert (a.device, a.progress, a.detector) == ("cpu", False, "mtcnn")
    assert " ".join(options.DEVICE_HELP.split()) in " ".join(p.format_help().split())
