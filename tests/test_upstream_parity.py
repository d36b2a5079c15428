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

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import hog_faces
from upstream import cosine, randomise, upstream_module

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # full-size networks on CPU: 10-140 s each
torch.set_num_threads(2)

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"
N_PHOTOS = int(os.environ.get("IDBENCH_PARITY_PHOTOS", "4"))  # more photos for a measurement run (pytest -s)


@pytest.fixture(scope="module")
def photos():
    """(RGB image, first dlib-HOG face) of 4 real photos."""
    if not (FACES / "MANIFEST.csv").is_file():
        pytest.skip("../shared/data/faces is not available")
    return hog_faces(sorted(FACES.glob("*/02.jpg"))[::7 if N_PHOTOS <= 8 else 1], n=N_PHOTOS)


def grey_levels(a: np.ndarray, b: np.ndarray, what: str = "") -> int:
    """Largest difference of two uint8 arrays in grey levels (printed with the share of differing values)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    d = np.abs(a.astype(int) - b.astype(int))
    print(f"PARITY {what}: max {d.max()} grey levels, {np.mean(d > 0):.4%} of values differ")
    return int(d.max())


def outputs(ours_out, ref, what: str = "") -> None:
    """Print the largest output difference (absolute and relative to the output scale) and the lowest cosine."""
    ours_out, ref = np.asarray(ours_out, np.float64), np.asarray(ref, np.float64)
    d = np.abs(ours_out - ref).max()
    print(f"PARITY {what}: output max abs diff {d:.3g} ({d / np.abs(ref).max():.2g} of scale), "
          f"min cosine {cosine(np.atleast_2d(ours_out), np.atleast_2d(ref)).min():.7f}")


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
    assert grey_levels(crops[..., ::-1], np.stack(official), "sphereface") <= 2
    from idbench.align import arcface_crop  # the other fit direction is far from the official crop

    other = np.stack([arcface_crop(img, face.landmarks5, 112, "image_to_template", 96) for img, face in photos])
    gap = np.abs(other[..., ::-1].astype(int) - np.stack(official)).mean()
    print(f"PARITY sphereface: the image->template fit is {gap:.1f} grey levels from the official crop on average")
    assert gap > 2
    outputs(emb, ref, "sphereface")
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
    assert grey_levels(crops, np.stack(official), "adaface") <= 2
    outputs(emb / np.linalg.norm(emb, axis=1, keepdims=True), ref, "adaface")  # the official output is unit-norm
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
    assert grey_levels(crops, official.permute(0, 2, 3, 1).numpy().astype(np.uint8), "facenet") == 0
    outputs(emb, ref, "facenet")
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


# --- estimators: HopeNet, L2CS-Net, Deep3DFaceRecon ------------------------------------------------------


def _softmax_angle(logits, step: float, offset: float) -> np.ndarray:
    """The official decoders: sum_i softmax_i * i * step - offset (degrees)."""
    p = torch.softmax(logits, 1)
    return (p * torch.arange(logits.shape[1], dtype=torch.float32)).sum(1).numpy() * step - offset


def test_hopenet_whole_call_is_test_on_video_dlibs(photos, tmp_path):
    """test_on_video_dlib.py: integer margins (Python 2 division), PIL Scale(224) + CenterCrop(224), ImageNet."""
    import torchvision
    from PIL import Image
    from torchvision import transforms

    from idbench.analysis.estimators import create_estimator

    hopenet = upstream_module("natanielruiz/deep-head-pose/code/hopenet.py", "_up_hopenet")
    net = randomise(hopenet.Hopenet(torchvision.models.resnet.Bottleneck, [3, 4, 6, 3], 66), 4)
    path = tmp_path / "hopenet_robust_alpha1.pkl"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=False)  # a PyTorch 0.3-era file
    est = create_estimator("pose.hopenet", weights=path)
    norm = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    for img, face in photos:
        x_min, y_min, x_max, y_max = (int(v) for v in face.box)
        bw, bh = abs(x_max - x_min), abs(y_max - y_min)
        x_min, x_max, y_min, y_max = x_min - 2 * bw // 4, x_max + 2 * bw // 4, y_min - 3 * bh // 4, y_max + bh // 4
        x_min, y_min = max(x_min, 0), max(y_min, 0)
        x_max, y_max = min(img.shape[1], x_max), min(img.shape[0], y_max)
        pil = transforms.Resize(224)(Image.fromarray(img[y_min:y_max, x_min:x_max]))
        w, h = pil.size  # torchvision 0.2's CenterCrop under Python 2: round half away from zero
        top, left = int(np.floor((h - 224) / 2.0 + 0.5)), int(np.floor((w - 224) / 2.0 + 0.5))
        official = np.asarray(pil)[top:top + 224, left:left + 224]
        assert grey_levels(est.preprocess(img, face), official, "hopenet") == 0
        with torch.no_grad():
            yaw, pitch, roll = net(norm(transforms.ToTensor()(official.copy()))[None])
        ref = [_softmax_angle(o, 3.0, 99.0)[0] for o in (yaw, pitch, roll)]
        outputs(est.estimate(img, face), ref, "hopenet (degrees)")
        np.testing.assert_allclose(est.estimate(img, face), ref, atol=1e-3)  # degrees, same order and signs


def test_l2cs_whole_call_is_the_pipelines_and_names_head0_yaw(photos, tmp_path):
    """l2cs/pipeline.py (int box, cv2.resize 224) + utils.prep_input_numpy (PIL Resize(448), ImageNet) + L2CS.
    The official output is (pitch, yaw) in radians with head 0 called pitch; idbench's (pitch, yaw) in degrees
    has head 0 as yaw."""
    import cv2
    import torchvision

    from idbench.analysis.estimators import create_estimator

    model_mod = upstream_module("Ahmednull/L2CS-Net/l2cs/model.py", "_up_l2cs_model")
    utils = upstream_module("Ahmednull/L2CS-Net/l2cs/utils.py", "_up_l2cs_utils",
                            replace=(("from .model import L2CS", "from _up_l2cs_model import L2CS"),))
    net = randomise(model_mod.L2CS(torchvision.models.resnet.Bottleneck, [3, 4, 6, 3], 90), 5)
    path = tmp_path / "L2CSNet_gaze360.pkl"
    torch.save(net.state_dict(), path)
    est = create_estimator("gaze.l2cs", weights=path)
    for img, face in photos:
        x_min, y_min, x_max, y_max = (max(int(v), 0) if i < 2 else int(v) for i, v in enumerate(face.box))
        crop = cv2.resize(img[y_min:y_max, x_min:x_max], (224, 224))  # pipeline.py (after BGR -> RGB)
        x = utils.prep_input_numpy(crop[None], "cpu")
        ref_in = (x[0].permute(1, 2, 0).numpy() * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406]))
        assert np.abs(ref_in * 255 - est.preprocess(img, face)).max() < 0.51  # the same uint8 image
        grey_levels(np.rint(ref_in * 255).astype(np.uint8), est.preprocess(img, face), "l2cs")
        with torch.no_grad():
            head0, head1 = net(x)
        official_pitch = np.radians(_softmax_angle(head0, 4.0, 180.0)[0])  # pipeline.py's names and units
        official_yaw = np.radians(_softmax_angle(head1, 4.0, 180.0)[0])
        pitch, yaw = est.estimate(img, face)
        outputs([yaw, pitch], np.degrees([official_pitch, official_yaw]), "l2cs (degrees)")
        assert abs(yaw - np.degrees(official_pitch)) < 1e-3 and abs(pitch - np.degrees(official_yaw)) < 1e-3


def test_deep3d_whole_call_is_align_imgs(photos, tmp_path):
    """util/preprocess.align_img (POS fit, PIL bicubic resize, crop) on the same 5 points + ReconNetWrapper."""
    from PIL import Image

    from idbench.analysis.estimators import create_estimator
    from idbench.faces import landmarks68_to_5
    from upstream import upstream_path

    load_mats = upstream_module("sicxu/Deep3DFaceRecon_pytorch/util/load_mats.py", "_up_d3d_load_mats")
    pre = upstream_module("sicxu/Deep3DFaceRecon_pytorch/util/preprocess.py", "_up_d3d_preprocess")
    nets = upstream_module("sicxu/Deep3DFaceRecon_pytorch/models/networks.py", "_up_d3d_networks",
                           replace=(("from .arcface_torch.backbones import get_model\n", ""),
                                    ("from kornia.geometry import warp_affine\n", "")))
    net = randomise(nets.ReconNetWrapper("resnet50", use_last_fc=False), 6)
    path = tmp_path / "epoch_20.pth"
    torch.save({"net_recon": net.state_dict(), "epoch": 20}, path)
    est = create_estimator("expression.deep3d", weights=path)
    lm3d = load_mats.load_lm3d(str(upstream_path("sicxu/Deep3DFaceRecon_pytorch/BFM/similarity_Lm3D_all.mat").parent))
    for img, face in photos:
        lm = landmarks68_to_5(face.landmarks68).astype(np.float64)
        lm[:, -1] = img.shape[0] - 1 - lm[:, -1]  # test.py: y up
        _, official, _, _ = pre.align_img(Image.fromarray(img), lm, lm3d)
        official = np.asarray(official)
        assert grey_levels(est.preprocess(img, face), official, "deep3d") == 0
        x = torch.tensor(official / 255.0, dtype=torch.float32).permute(2, 0, 1)[None]
        with torch.no_grad():
            ref = net(x).numpy()[0]
        coef = est.coefficients(img, face)
        got = np.concatenate([coef[k] for k in ("id", "exp", "tex", "angle", "gamma", "txy", "tz")])
        outputs(got, ref, "deep3d")
        assert np.abs(got - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())


# --- BiSeNet face parsing -------------------------------------------------------------------------------


def test_parsing_whole_call_is_test_pys(photos, tmp_path):
    """face-parsing.PyTorch test.py: PIL resize((512, 512), BILINEAR), ToTensor, ImageNet, net(x)[0].argmax."""
    from PIL import Image
    from torchvision import transforms

    from idbench.swapper.parsing import PARSING_INNER, ParsingMask

    upstream_module("zllrunning/face-parsing.PyTorch/resnet.py", "_up_parsing_resnet")
    model = upstream_module("zllrunning/face-parsing.PyTorch/model.py", "_up_parsing_model",
                            replace=(("from resnet import Resnet18", "from _up_parsing_resnet import Resnet18"),))
    net = randomise(model.BiSeNet(n_classes=19), 7)
    path = tmp_path / "79999_iter.pth"
    torch.save(net.state_dict(), path)
    mask = ParsingMask(path)
    to_tensor = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    import cv2

    for img, _ in photos:
        x = to_tensor(Image.fromarray(img).resize((512, 512), Image.BILINEAR))[None]
        with torch.no_grad():
            labels = net(x)[0][0].argmax(0).numpy()
        keep = np.isin(labels, PARSING_INNER).astype(np.uint8)
        assert 0.01 < keep.mean() < 0.99  # random weights that still give both classes
        ref = cv2.resize(keep, img.shape[1::-1], interpolation=cv2.INTER_NEAREST)  # idbench's own step back
        print(f"PARITY parsing: {np.mean(mask(img) != ref):.4%} of mask pixels differ")
        assert np.mean(mask(img) == ref) > 0.999


# --- IResNet family: arcface_torch, BlendFace, CurricularFace -----------------------------------------------


IRESNETS = {  # idbench name: (upstream file, module name, constructor, released file name)
    "arcface.r50": ("deepinsight/insightface/recognition/arcface_torch/backbones/iresnet.py", "_up_arcface_iresnet",
                    lambda m: m.iresnet50(), "ms1mv3_arcface_r50_fp16_backbone.pth"),
    "blendface.r50": ("mapooon/BlendFace/iresnet.py", "_up_blendface_iresnet", lambda m: m.iresnet50(),
                      "blendface_r50_backbone.pth"),
    "curricularface.ir101": ("HuangYG123/CurricularFace/backbone/model_irse.py", "_up_curricular_irse",
                             lambda m: m.IR_101([112, 112]), "CurricularFace_Backbone.pth"),
}


@pytest.mark.parametrize("name", sorted(IRESNETS))
def test_iresnet_whole_call_is_norm_crop_and_the_official_module(photos, tmp_path, name):
    """insightface's norm_crop (the data these were trained and evaluated on) + (x/255 - 0.5)/0.5 RGB
    (arcface_torch's inference.py) + the official module, saved as its repository releases the backbone."""
    from insightface.utils.face_align import norm_crop

    rel, mod, build, filename = IRESNETS[name]
    net = randomise(build(upstream_module(rel, mod)), 8)
    path = tmp_path / filename
    torch.save(net.state_dict(), path)
    official = np.stack([norm_crop(img, face.landmarks5) for img, face in photos])  # float32 points, as detected
    x = torch.from_numpy(official).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5).contiguous()
    with torch.no_grad():
        out = net(x)
    ref = (out[0] if isinstance(out, tuple) else out).numpy()  # CurricularFace returns (embedding, conv_out)
    crops, emb = ours(name, path, photos)
    assert grey_levels(crops, official, name) <= 2  # measured: 2 grey levels on < 0.01% of values
    outputs(emb, ref, name)
    assert np.mean(crops != official) < 1e-3
    assert cosine(emb, ref).min() > 0.9999


# --- learned swappers -------------------------------------------------------------------------------------


def test_blendswap_whole_call_is_inference_pys(photos, tmp_path):
    """swapping/blendswap.py's BlendSwap (full size, random weights) on idbench's crops, then inference.py's
    ``(output * 255).astype(np.uint8)``, vs idbench's generate (identity computed once per source)."""
    from idbench.swapper import create_swapper
    from idbench.swapper.learned.paste import crop_face

    root = "mapooon/BlendFace/swapping/"
    names = {"generator": "_up_bs_generator", "encoder": "_up_bs_encoder", "iresnet": "_up_bs_iresnet"}
    for file, mod in names.items():
        upstream_module(f"{root}model/{file}.py", mod)
    bs = upstream_module(f"{root}blendswap.py", "_up_bs_blendswap",
                         replace=tuple((f"from model.{f} import", f"from {m} import") for f, m in names.items()))
    torch.manual_seed(9)
    model = randomise(bs.BlendSwap(), 9)
    path = tmp_path / "blendswap.pth"
    torch.save(model.state_dict(), path)  # the released file: the whole module's state_dict()
    sw = create_swapper("blendswap", weights=path).model
    (s_img, s_face), (t_img, t_face) = photos[0], photos[1]
    s_crop, _ = crop_face(s_img, s_face, sw.spec.source)
    t_crop, _ = crop_face(t_img, t_face, sw.spec.target)
    tensor = lambda c: torch.from_numpy(c.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)  # ToTensor
    with torch.no_grad():
        out = model(tensor(t_crop), tensor(s_crop))
    official = (out.permute(0, 2, 3, 1)[0].numpy() * 255).astype(np.uint8)
    ours_out = sw.generate(t_crop, sw.identity(s_crop))
    assert grey_levels(ours_out, official, "blendswap output") <= 1 and np.mean(ours_out != official) < 1e-3


def test_inswapper_whole_call_is_insightfaces_inswapper(photos, tmp_path):
    """insightface's own INSwapper.get(paste_back=False) (norm_crop2, blobFromImage, truncation) on real photos,
    with a small graph of inswapper_128's I/O, vs idbench's crop + generate on the same latent."""
    import types

    ins = pytest.importorskip("insightface.model_zoo.inswapper")
    from learned_weights import identity_onnx, inswapper_onnx

    from idbench.swapper import create_swapper
    from idbench.swapper.learned.paste import crop_face

    model = inswapper_onnx(tmp_path)
    sw = create_swapper("inswapper", weights=model, identity_weights=identity_onnx(tmp_path)).model
    ref = ins.INSwapper(model_file=str(model))
    (s_img, s_face) = photos[0]
    s_crop, _ = crop_face(s_img, s_face, sw.spec.source)
    emb = sw.encoder.embed(s_crop[None])[0]
    latent = sw.identity(s_crop)
    ours_all, theirs_all = [], []
    for t_img, t_face in photos[1:]:
        bgr_fake, _ = ref.get(np.ascontiguousarray(t_img[..., ::-1]), types.SimpleNamespace(kps=t_face.landmarks5),
                              types.SimpleNamespace(normed_embedding=emb), paste_back=False)
        t_crop, _ = crop_face(t_img, t_face, sw.spec.target)
        ours_all.append(sw.generate(t_crop, latent))
        theirs_all.append(bgr_fake[..., ::-1])
    assert grey_levels(np.stack(ours_all), np.stack(theirs_all), "inswapper output") <= 1


def test_simswap_whole_call_is_test_one_images(photos, tmp_path):
    """SimSwap's test_one_image.py on 224 crops: source -> ToTensor, ImageNet, nearest resize to 112, ArcFace
    (models/arcface_models.py, conv3x3 injected from foamliu/InsightFace-v2), normalise; target -> ToTensor ->
    Generator_Adain_Upsample (fs_networks.py, 9 blocks); official float output vs idbench's uint8."""
    import torch.nn.functional as F
    from torch import nn
    from torchvision import transforms

    from idbench.swapper import create_swapper
    from idbench.swapper.learned.paste import crop_face

    def conv3x3(in_planes, out_planes, stride=1):  # foamliu/InsightFace-v2 models.py, which SimSwap's file uses
        return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)

    upstream_module("neuralchen/SimSwap/models/config.py", "_up_simswap_config")
    arc = upstream_module("neuralchen/SimSwap/models/arcface_models.py", "_up_simswap_arcface",
                          inject={"conv3x3": conv3x3},
                          replace=(("from .config import", "from _up_simswap_config import"),))
    fs = upstream_module("neuralchen/SimSwap/models/fs_networks.py", "_up_simswap_fs")
    torch.manual_seed(10)
    netArc = randomise(arc.ResNet(arc.IRBlock, [2, 2, 2, 2], use_se=True), 10)
    netG = randomise(fs.Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False), 11)
    torch.save(netG.state_dict(), tmp_path / "latest_net_G.pth")
    torch.save(netArc.state_dict(), tmp_path / "arcface_checkpoint.tar")  # its state_dict (no pickle switch)
    sw = create_swapper("simswap", weights={"latest_net_G.pth": tmp_path / "latest_net_G.pth",
                                            "arcface_checkpoint.tar": tmp_path / "arcface_checkpoint.tar"}).model
    (s_img, s_face), (t_img, t_face) = photos[0], photos[1]
    s_crop, _ = crop_face(s_img, s_face, sw.spec.source)
    t_crop, _ = crop_face(t_img, t_face, sw.spec.target)
    arcface_in = transforms.Compose([transforms.ToTensor(),
                                     transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        latent = F.normalize(netArc(F.interpolate(arcface_in(s_crop)[None], size=(112, 112))), p=2, dim=1)
        official = netG(transforms.ToTensor()(t_crop)[None], latent)[0].permute(1, 2, 0).numpy()
    ours_latent = sw.identity(s_crop)
    outputs(ours_latent, latent.numpy(), "simswap identity")
    ours_out = sw.generate(t_crop, ours_latent)
    d = np.abs(ours_out.astype(float) - official * 255)
    print(f"PARITY simswap output: max {d.max():.3f} grey levels from the official float output (rounding: 0.5)")
    assert cosine(ours_latent, latent.numpy()).min() > 0.99999
    assert d.max() <= 0.5 + 1e-2
