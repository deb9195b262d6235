"""CLIP scorer (tiny random-weight model: offline), Eq. 1 / Eq. 4 maths, offline error messages,
and the offline sentence encoder."""
from __future__ import annotations

import pytest
import torch

from avatarclip_core.clip import (
    ClipConfig,
    ClipUnavailableError,
    TextEncoder,
    back_prompt,
    face_prompt,
    load_scorer,
    relative_scores,
    tiny_test_scorer,
)
from avatarclip_core.errors import UserInputError


@pytest.fixture(scope="module", autouse=True)
def offline():
    """Nothing here may touch the network: HF_HUB_OFFLINE=1, also for an already imported hub."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        try:
            from huggingface_hub import constants

            mp.setattr(constants, "HF_HUB_OFFLINE", True)
        except ImportError:
            pass
        yield


@pytest.fixture(scope="module")
def tiny():
    return tiny_test_scorer(seed=0)


def test_tiny_scorer_encodes_and_is_marked_not_real(tiny):
    assert tiny.real is False
    text = tiny.encode_text(["a tall man", "a short woman", "a tall man"])
    assert text.shape == (3, 64)
    assert torch.allclose(text.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(text[0], text[2])  # cached / deterministic
    assert not torch.allclose(text[0], text[1], atol=1e-3)
    images = torch.rand(3, 80, 100, 3)  # any size and aspect: resized and centre-cropped
    feats = tiny.encode_image(images)
    assert feats.shape == (3, 64)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_tiny_scorer_is_seeded(tiny):
    again = tiny_test_scorer(seed=0)
    other = tiny_test_scorer(seed=1)
    t = ["a person"]
    assert torch.allclose(tiny.encode_text(t), again.encode_text(t), atol=1e-6)
    assert not torch.allclose(tiny.encode_text(t), other.encode_text(t), atol=1e-3)


def test_encode_images_in_reduced_precision_keeps_the_features_and_the_fp32_model(tiny):
    images = torch.rand(4, 64, 64, 3)
    exact = tiny.encode_image(images)
    assert torch.equal(tiny.encode_images(images), exact)  # fp32: the same computation, no gradients
    for dtype in (torch.bfloat16, torch.float16):
        reduced = tiny.encode_images(images, dtype)
        assert reduced.dtype == torch.float32 and not reduced.requires_grad
        assert torch.allclose(reduced.norm(dim=-1), torch.ones(4), atol=1e-5)
        assert (reduced * exact).sum(-1).min() > 0.99
        assert not torch.equal(reduced, exact)  # really computed in dtype
    assert all(p.dtype == torch.float32 for p in tiny.model.parameters())  # the copy was cast, not the model
    assert torch.equal(tiny.encode_image(images), exact)


def test_inference_dtype_picks_native_precisions_and_names_bad_ones(monkeypatch):
    from avatarclip_core import device

    assert device.inference_dtype("auto", "cuda:0") == torch.float16
    assert device.inference_dtype("fp32", "cuda") == torch.float32
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert device.inference_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert device.inference_dtype("auto", "cpu") == torch.float32
    assert device.inference_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(UserInputError, match="auto, fp32, bf16, fp16.*'fp64'"):
        device.inference_dtype("fp64", "cpu")


def test_image_gradients_flow_through_encode_image(tiny):
    images = torch.rand(2, 128, 128, 3, requires_grad=True)  # shrunk to 64x64 with antialiasing
    loss = tiny.clip_loss(images, "a muscular woman")
    loss.backward()
    assert images.grad is not None
    assert torch.isfinite(images.grad).all()
    assert images.grad.abs().sum() > 0


def test_clip_loss_is_eq1(tiny):
    images = torch.rand(2, 64, 64, 3)
    texts = ["a tall man", "a short woman"]
    expected = (1 - (tiny.encode_image(images) * tiny.encode_text(texts)).sum(-1)).mean()
    assert torch.allclose(tiny.clip_loss(images, texts), expected, atol=1e-6)
    with pytest.raises(ValueError):
        tiny.clip_loss(images, ["a", "b", "c"])


def test_clip_loss_falls_when_optimising_an_image(tiny):
    torch.manual_seed(0)
    logits = torch.zeros(1, 64, 64, 3).uniform_(-0.5, 0.5).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=0.05)
    prompt = "a tall and fat man"
    losses = []
    for _ in range(30):
        loss = tiny.clip_loss(torch.sigmoid(logits), prompt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.2, losses


def test_relative_scores_are_eq4():
    neutral_img = torch.tensor([1.0, 0.0, 0.0])
    neutral_txt = torch.tensor([0.0, 1.0, 0.0])
    text = torch.tensor([0.0, 1.0, 2.0])  # direction +z
    feats = torch.tensor([[1.0, 0.0, 5.0], [1.0, 0.0, -1.0], [1.0, 3.0, 0.0]])
    scores = relative_scores(feats, neutral_img, text, neutral_txt)
    assert torch.allclose(scores, torch.tensor([1.0, -1.0, 0.0]), atol=1e-6)
    assert int(scores.argmax()) == 0


def test_prompt_helpers():
    assert face_prompt("a tall man") == "the face of a tall man"
    assert back_prompt(" Iron Man ") == "the back of Iron Man"


def test_missing_tag_offline_names_cache_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path))
    with pytest.raises(ClipUnavailableError) as info:
        load_scorer(ClipConfig(model="ViT-B-32", pretrained="openai", device="cpu"))
    message = str(info.value)
    assert isinstance(info.value, UserInputError)
    assert "ViT-B-32:openai" in message
    assert str(tmp_path / "cache" / "open_clip") in message
    assert "offline" in message and "clip.checkpoint=" in message


def test_missing_tag_with_an_unreachable_hub_fails_at_once(tmp_path, monkeypatch):
    """Online mode, but the hub does not answer (here: a closed local port as HF_ENDPOINT, so nothing
    leaves the machine): one connection attempt, not the hub client's ~50 s of retries."""
    import socket

    from huggingface_hub import constants

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ClipUnavailableError, match="127.0.0.1 does not answer") as info:  # the probe's words
        load_scorer(ClipConfig(model="ViT-B-32", pretrained="openai", device="cpu"))
    assert "clip.checkpoint=" in str(info.value)


def test_missing_checkpoint_path_is_named(tmp_path):
    missing = tmp_path / "nope" / "ViT-B-32.pt"
    with pytest.raises(ClipUnavailableError, match="does not exist") as info:
        load_scorer(ClipConfig(checkpoint=str(missing), device="cpu"))
    assert str(missing) in str(info.value)


def test_bad_checkpoint_file_and_unknown_names(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ClipUnavailableError, match="could not load CLIP"):
        load_scorer(ClipConfig(checkpoint=str(junk), device="cpu"))
    with pytest.raises(ClipUnavailableError, match="did you mean ViT-B-32"):
        load_scorer(ClipConfig(model="ViT-B-33", device="cpu"))
    with pytest.raises(ClipUnavailableError, match="not a pretrained tag"):
        load_scorer(ClipConfig(pretrained="no-such-tag", device="cpu"))
    with pytest.raises(ClipUnavailableError, match="no CLIP weights configured"):
        load_scorer(ClipConfig(pretrained="", device="cpu"))


def test_checkpoint_path_loads_local_weights(tiny, tmp_path):
    from avatarclip_core.clip.scorer import TINY_TEST_MODEL

    path = tmp_path / "tiny.pt"
    torch.save(tiny.model.state_dict(), path)
    scorer = load_scorer(ClipConfig(model=TINY_TEST_MODEL, pretrained="", checkpoint=str(path), device="cpu"))
    assert scorer.real
    t = ["a very tall person"]
    assert torch.allclose(scorer.encode_text(t), tiny.encode_text(t), atol=1e-5)
    image = torch.rand(1, 64, 64, 3)
    assert torch.allclose(scorer.encode_image(image), tiny.encode_image(image), atol=1e-5)


@pytest.fixture(scope="module")
def text_encoder():
    return TextEncoder()


def test_text_encoder_ranks_paraphrase_above_unrelated(text_encoder):
    emb = text_encoder.encode(["a very tall man", "an extremely tall guy", "a bowl of soup on a table"])
    assert emb.shape == (3, 384)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-4)
    sims = emb @ emb[0]
    assert sims[1] > sims[2] + 0.3, sims


def test_packaged_sentence_model_in_plain_torch_matches_sentence_transformers(text_encoder):
    """The packaged MiniLM is read without sentence-transformers (avatarclip_core.clip.minilm: 3-4 s of
    imports saved per process); its embeddings are sentence-transformers' own: the same token ids and,
    for the shape query's pairs, the same float32 values."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    from avatarclip_core.clip.minilm import MiniLM

    assert isinstance(text_encoder._model, MiniLM)
    reference = SentenceTransformer(str(text_encoder.path), device="cpu", local_files_only=True)
    texts = ["a very tall heavy man", "a person with an average body", "", "A VERY muscular, old man!!",
             "naïve café 日本語", "tall " * 400, "short chubby kid with a round face"]
    ids = reference.tokenizer(texts, padding=True, truncation="longest_first", max_length=256,
                              return_tensors="pt")["input_ids"]
    assert torch.equal(ids, torch.tensor([e.ids for e in text_encoder._model.tokenizer.encode_batch(texts)]))
    ours = text_encoder.encode(texts)
    theirs = reference.encode(texts, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
    assert float((ours - theirs).abs().max()) < 1e-6
    for text in texts[:4]:  # what ShapeQuery encodes: the words and the neutral text, one batch of two
        pair = [text, "a person with an average body"]
        assert float((text_encoder.encode(pair) - reference.encode(
            pair, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)).abs().max()) < 1e-6


def test_torchscript_checkpoint_like_openais_original_file(tiny, tmp_path):
    """OpenAI's ViT-B-32.pt is a TorchScript archive (torch.load(weights_only=True) refuses it)."""
    import warnings

    from avatarclip_core.clip.scorer import TINY_TEST_MODEL

    path = tmp_path / "tiny_jit.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(tiny.model), str(path))
    scorer = load_scorer(ClipConfig(model=TINY_TEST_MODEL, pretrained="", checkpoint=str(path), device="cpu"))
    image = torch.rand(1, 64, 64, 3)
    assert torch.allclose(scorer.encode_image(image), tiny.encode_image(image), atol=1e-5)
    assert torch.allclose(scorer.encode_text(["an old man"]), tiny.encode_text(["an old man"]), atol=1e-5)
