"""docs/cli.md is the generated command-line reference: it must match the commands as they are."""

from pathlib import Path

from idbench.bench.cli import app
from idbench.bench.cli.reference import REGENERATE, markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_docs_cli_md_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == markdown(), f"docs/cli.md is stale: regenerate it with `{REGENERATE}`"


def test_reference_lists_every_command_and_option():
    """Checked against the click objects --help prints, independently of the generator's formatting."""
    import typer

    text = markdown()
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    for name in root.list_commands(ctx):
        cmd = root.get_command(ctx, name)
        subs = [cmd.get_command(ctx, n) for n in cmd.list_commands(ctx)] if hasattr(cmd, "list_commands") else [cmd]
        for sub in subs:
            section = text.split(f"\n## bench {name}")[1].split("\n## ")[0]
            for p in sub.params:
                for flag in [*p.opts, *getattr(p, "secondary_opts", [])]:
                    if flag.startswith("-"):
                        assert f"`{flag}`" in section, (name, flag)
