"""``bench encoder inspect``: what an ONNX graph says about itself, or a contract file checked."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import Device

NAME = "inspect"
GROUP = ("encoder", "Bring your own encoder: read a graph, check a contract.")


def command(path: Path = typer.Argument(..., help="an ONNX graph, or a contract .toml to check"),
            device: Device = "cpu"):
    """Print what an ONNX graph says about its input and outputs, and a contract template to fill in
    (or, for a contract file, check it against its model and print the resolved contract)."""
    from idbench.devices import resolve_device

    device = resolve_device(device)
    if str(path).lower().endswith(".toml"):
        _print_contract(path, device)
    else:
        _print_graph(path, device)


def _print_graph(path: Path, device: str) -> None:
    from idbench.encoders.contract import contract_template
    from idbench.encoders.onnx_backend import output_width, read_graph

    info = read_graph(path, device)
    typer.echo(f"# {path}")
    typer.echo(f"# input  {info.input_name}  {list(info.input_shape)}  {info.input_dtype}  layout "
               f"{info.layout or 'unknown (declare it)'}  size {list(info.input_size)}")
    for name, shape in info.outputs:
        width = output_width(shape)
        typer.echo(f"# output {name}  {list(shape)}  width {width if width else 'symbolic (declare embedding_size)'}")
    typer.echo("# contract template (colour, mean, std and alignment cannot be read from a graph):")
    typer.echo(contract_template(info, path.resolve()), nl=False)


def _print_contract(path: Path, device: str) -> None:
    from idbench.encoders import create_encoder

    enc = create_encoder(path, device=device)
    s = enc.spec
    typer.echo(f"{path}: contract OK ({type(enc).__name__})")
    for key in ("name", "backend", "input_size", "layout", "colour", "mean", "std", "alignment", "output",
                "embedding_size"):
        typer.echo(f"  {key} = {getattr(s, key)!r}")
    typer.echo(f"  weights = {str(enc.weights_path)!r}")
