"""``bench embed``: detect, align and embed the faces of images and videos into one .npz."""

from __future__ import annotations

import typer

from .options import (CacheDir, DetectBatch, Detector, Device, Encoder, Frames, Inputs, MinFace, MultiFace, NoCache,
                      Weights, check_detect_batch, open_cache, out_option, parse_weights)
from .output import echo_drops

NAME = "embed"


def command(inputs: Inputs,
            encoder: Encoder = "dlib",
            out: out_option("output .npz") = ...,
            detector: Detector = "auto",
            all_faces: bool = typer.Option(False, "--all-faces", help="embed every face (= --multi-face all)"),
            multi_face: MultiFace = "largest",
            min_face: MinFace = 32,
            weights: Weights = [],
            device: Device = "cpu",
            detect_batch: DetectBatch = None,
            frames: Frames = 10,
            no_cache: NoCache = False,
            cache_dir: CacheDir = None):
    """Detect, align and embed faces; write OUT.npz (paths, frame, embeddings, bboxes, landmarks, skipped, warnings)."""
    from idbench.bench import validate as V
    from idbench.devices import resolve_device

    wpath = parse_weights(weights, [encoder]).get(encoder)
    V.validate_embed(encoder=encoder, detector=detector, inputs=inputs, out=out, weights=wpath,
                     cache_dir=cache_dir, no_cache=no_cache)
    policy = V.face_policy(multi_face, min_face, all_faces)
    V.check_numbers(min_face=min_face, detect_batch=detect_batch)
    device = resolve_device(device)
    from idbench.encoders import create_encoder  # imports torch: after the checks

    enc = create_encoder(encoder, weights=wpath, device=device)
    encoder = enc.spec.name  # a contract file's leaderboard name
    listing, vids, table, skipped, warnings = _embed(inputs, enc, detector, device, policy, detect_batch, frames,
                                                     open_cache(no_cache, cache_dir), out)
    for p, r in skipped:
        typer.echo(f"skipped {p}: {r}", err=True)
    for w in warnings:
        typer.echo(f"warning {w['item']}: {w['reason']}", err=True)
    typer.echo(f"{len(table.paths)} faces embedded with {encoder}, {len(skipped)} skipped, "
               f"{len(warnings)} warnings -> {out}")
    drops = [{"stage": "list", "item": p, "reason": r} for p, r in listing.ignored] + \
        [{"stage": "read", "item": p, "reason": r} for p, r in vids.failed] + \
        [{**f, "item": vids.label(f["item"])} for f in table.failures]
    echo_drops(drops, f'{out} "skipped"')


def _embed(inputs, enc, detector, device, policy, detect_batch, frames, cache, out):
    """Every file under the inputs (a video: ``frames`` evenly spaced frames, a row each) detected and embedded;
    writes the .npz. Returns the listing, the video expansion, the table, the skipped items and the warnings."""
    import io

    import numpy as np

    from idbench.bench.video_inputs import expand_videos
    from idbench.cache import write_atomic
    from idbench.escape import field  # one TSV row per skipped file, whatever its name holds
    from idbench.face_policy import image_warnings
    from idbench.imageio import scan_inputs
    from idbench.packed_cache import for_images
    from idbench.pipeline import detect_paths, embed_detected

    encoder = enc.spec.name
    listing = scan_inputs(inputs)  # every file under the folders: used, or ignored with a reason
    vids = expand_videos(listing.files, frames)
    cache = for_images(cache, len(vids.files))  # VGGFace2 scale: one database, not ~11 files per image
    stream = detect_paths(vids.files, detector, cache, device, policy=policy, batch=check_detect_batch(detect_batch))
    table = embed_detected(stream, {encoder: enc}, detector, cache, total=len(vids.files))
    skipped = ([(p, f"ignored: {r}") for p, r in listing.ignored] + vids.failed +
               [(vids.label(p), r) for p, r in table.skipped])
    warnings = [{**w, "item": vids.label(w["item"])} for w in image_warnings(table.images)]
    buf = io.BytesIO()
    np.savez(buf, paths=np.array([vids.source(p)[0] for p in table.paths], dtype=str),
             frame=np.array([vids.source(p)[1] for p in table.paths], np.int64),  # -1: a photo
             embeddings=table.embeddings[encoder],
             bboxes=table.bboxes, landmarks=table.landmarks, face_index=table.face_index,
             skipped=np.array([f"{field(p)}\t{field(r)}" for p, r in skipped], dtype=str),
             warnings=np.array([f"{field(w['item'])}\t{field(w['reason'])}" for w in warnings], dtype=str),
             encoder=encoder)
    write_atomic(out, buf.getvalue())
    return listing, vids, table, skipped, warnings
