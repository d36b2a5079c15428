"""idbench against the official code of each network it loads (../shared/upstream, skipped when absent).

For each network: the official module with random weights, saved the way its repository releases them, is
loaded through idbench's factory; then the official preprocessing + forward on real photos
(../shared/data/faces) is compared with idbench's whole call (detection record -> crop -> network).

Tolerances (whole call, real photos, random weights):
* crops: at most 1-2 grey levels on a few pixels (cv2.warpAffine's 1/32-pixel fixed point meets a matrix
  fitted in float64 vs float32) -- resampling noise; embeddings then agree to cosine > 0.999;
* PIL / OpenCV resizes done the official way: identical pixels (0 grey levels), outputs to float noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import hog_faces
from upstream import cosine, randomise, upstream_module

torch = pytest.importorskip("torch")
torch.set_num_threads(2)

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"
N_PHOTOS = 4


@pytest.fixture(scope="module")
def photos():
    """(RGB image, first dlib-HOG face) of 4 real photos."""
    if not (FACES / "MANIFEST.csv").is_file():
        pytest.skip("../shared/data/faces is not available")
    return hog_faces(sorted(FACES.glob("*/02.jpg"))[::7], n=N_PHOTOS)


def grey_levels(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def ours(name: str, path: Path, photos) -> tuple:
    """(idbench crops, raw embeddings) of the whole call: the encoder's recipe crop, then its network."""
    from idbench.encoders import create_encoder
    from idbench.recipe_face import encoder_crop

    enc = create_encoder(name, weights=path)
    crops = np.stack([encoder_crop(img, face, enc.spec) for img, face in photos])
    return crops, enc.embed(crops, normalise=False)


# --- SphereFace: lfw_eval.py -------------------------------------------------------------------------------


def test_sphereface_whole_call_is_lfw_evals(photos, tmp_path):
    """lfw_eval.py's alignment() (matlab_cp2tform, 96 x 112, BGR) + (x - 127.5) / 128 + sphere20a(feature=True)."""
    upstream_module("clcarwin/sphereface_pytorch/matlab_cp2tform.py", "_up_sphere_cp2tform")
    net_sphere = upstream_module("clcarwin/sphereface_pytorch/net_sphere.py", "_up_sphere_net")
    lfw_eval = upstream_module("clcarwin/sphereface_pytorch/lfw_eval.py", "_up_sphere_lfw_eval")
    net = randomise(net_sphere.sphere20a(), 1)
    path = tmp_path / "sphere20a_20171020.pth"
    torch.save(net.state_dict(), path)  # the released file: the state_dict, fc6 (AngleLinear) included
    net.feature = True
    official = [lfw_eval.alignment(np.ascontiguousarray(img[..., ::-1]), face.landmarks5) for img, face in photos]
    x = torch.from_numpy((np.stack(official).transpose(0, 3, 1, 2) - 127.5) / 128.0).float()
    with torch.no_grad():
        ref = net(x).numpy()
    crops, emb = ours("sphereface.sphere20a", path, photos)
    assert grey_levels(crops[..., ::-1], np.stack(official)) <= 2
    assert cosine(emb, ref).min() > 0.999


# --- AdaFace: face_alignment/align_trans.py + inference.py ------------------------------------------------


def test_adaface_whole_call_is_inferences(photos, tmp_path):
    """align_trans.warp_and_crop_face (matlab_cp2tform onto the square reference) + inference.to_input + IR-50."""
    upstream_module("mk-minchul/AdaFace/face_alignment/mtcnn_pytorch/src/matlab_cp2tform.py", "_up_adaface_cp2tform")
    align = upstream_module("mk-minchul/AdaFace/face_alignment/mtcnn_pytorch/src/align_trans.py",
                            "_up_adaface_align_trans")
    net_mod = upstream_module("mk-minchul/AdaFace/net.py", "_up_adaface_net")
    inference = upstream_module("mk-minchul/AdaFace/inference.py", "_up_adaface_inference",
                                replace=(("import net\n", "import _up_adaface_net as net\n"),
                                         ("from face_alignment import align\n", "")))
    model = randomise(net_mod.build_model("ir_50"), 2)
    path = tmp_path / "adaface_ir50_ms1mv2.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
    ref_pts = align.get_reference_facial_points(default_square=True)
    official = [align.warp_and_crop_face(img, face.landmarks5, ref_pts.copy(), crop_size=(112, 112))
                for img, face in photos]
    with torch.no_grad():
        ref = torch.cat([model(inference.to_input(c))[0] for c in official]).numpy()
    crops, emb = ours("adaface.ir50", path, photos)
    assert grey_levels(crops, np.stack(official)) <= 2
    assert cosine(emb, ref).min() > 0.999


# --- FaceNet: facenet-pytorch's own MTCNN + extract_face ---------------------------------------------------


def test_facenet_whole_call_crops_mtcnns_box(photos, tmp_path):
    """facenet-pytorch MTCNN(image_size=160, margin=14) on the numpy image -> InceptionResnetV1, whatever box
    the run's detector gave (here dlib-HOG's)."""
    fp = pytest.importorskip("facenet_pytorch")
    from facenet_pytorch.models.utils.detect_face import extract_face

    from idbench.encoders.facenet import FACENET_MODELS

    model = randomise(fp.InceptionResnetV1(pretrained=None, classify=False), 3)
    path = tmp_path / FACENET_MODELS["vggface2"][0]
    torch.save(model.state_dict(), path)
    mtcnn = fp.MTCNN(image_size=160, margin=14, keep_all=True, post_process=True)
    official = []
    for img, face in photos:
        boxes, _ = mtcnn.detect(img)
        iou = [_iou(b, face.box) for b in boxes]
        official.append(extract_face(img, boxes[int(np.argmax(iou))], 160, 14))  # what mtcnn(img) returns, 0..255
    official = torch.stack(official)
    with torch.no_grad():
        ref = model(fp.fixed_image_standardization(official)).numpy()
    assert all(face.detector == "dlib-hog" for _, face in photos)
    crops, emb = ours("facenet.vggface2", path, photos)
    assert grey_levels(crops, official.permute(0, 2, 3, 1).numpy().astype(np.uint8)) == 0
    assert np.abs(emb - ref).max() < 1e-5
    # the run's own (HOG) box would crop another face region
    from idbench.align import align_face

    hog = np.stack([align_face(img, face, "mtcnn160") for img, face in photos])
    assert np.abs(hog.astype(int) - crops).mean() > 5


def _iou(a, b) -> float:
    from idbench.recipe_face import box_iou

    return box_iou(np.asarray(a, np.float64), np.asarray(b, np.float64))


def test_recipe_face_leaves_other_encoders_faces_alone(photos):
    from idbench.encoders import get_spec
    from idbench.recipe_face import recipe_face

    img, face = photos[0]
    assert recipe_face(img, face, get_spec("arcface.r100").box_detector) is face
    mt = recipe_face(img, face, get_spec("facenet.vggface2").box_detector)
    assert mt.detector == "mtcnn" and _iou(mt.box, face.box) > 0.5
    assert recipe_face(img, mt, "mtcnn") is mt  # already MTCNN's face: no second detection
