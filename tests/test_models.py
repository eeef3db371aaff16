"""Tests for fxenergy.models: named builders on meta, bundled configs, file:factory and errors."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
import torchvision.models as tvm
import transformers
from torch import nn

from fxenergy.errors import UserInputError
from fxenergy.models import BuiltModel, ModelInfo, build_model, list_models, meta_init
from fxenergy.models._hf import CONFIG_DIR

TV_NAMES = sorted(tvm.list_models(module=tvm))
BUNDLED = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))

# Published parameter counts (tied embeddings counted once).
EXPECTED_PARAMS = {
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "bert-base-uncased": 109_482_240,
    "bert-large-uncased": 335_141_888,
    "distilbert-base-uncased": 66_362_880,
    "roberta-base": 124_645_632,
    "t5-small": 60_506_624,
    "t5-base": 222_903_552,
    "vit-base-patch16-224": 86_567_656,
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "llama-3-8b": 8_030_261_248,
    "mistral-7b": 7_241_732_096,
    "gpt-j-6b": 6_053_381_344,
    "qwen2-7b": 7.6e9,
    "gemma-7b": 8.54e9,
    "mixtral-8x7b": 47e9,
}
# Published only to two figures ("1.3B"): checked to 3%.
ROUNDED_PARAMS = {"gpt3-xl": 1.3e9, "gpt3-2.7b": 2.7e9, "opt-1.3b": 1.3e9, "phi-2": 2.7e9, "falcon-7b": 7e9}
REQUIRED = {
    "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "bert-base-uncased", "bert-large-uncased",
    "distilbert-base-uncased", "t5-small", "vit-base-patch16-224", "llama-2-7b", "llama-2-13b",
    "llama-2-70b", "mistral-7b",
}  # fmt: skip


def _tensors(built: BuiltModel) -> list[torch.Tensor]:
    return [*built.model.parameters(), *built.model.buffers(), *built.args, *built.kwargs.values()]


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- bundled transformers configs ------------------------------------------------------------------


def test_required_configs_are_bundled() -> None:
    assert REQUIRED <= set(BUNDLED)
    assert set(BUNDLED) == set(EXPECTED_PARAMS) | set(ROUNDED_PARAMS), "every bundled config needs a published count"


@pytest.mark.parametrize("name", BUNDLED)
def test_config_file_shape(name: str) -> None:
    data = json.loads((CONFIG_DIR / f"{name}.json").read_text())
    meta = data["_fxenergy"]
    assert isinstance(data["model_type"], str)
    assert set(meta) >= {"class", "task", "description", "source"}
    assert hasattr(transformers, meta["class"])
    assert meta["task"] in {"causal-lm", "encoder", "seq2seq", "image-classification"}
    assert "/" in meta["source"] and "\n" not in meta["description"]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_builds_on_meta(name: str) -> None:
    built = build_model(name)
    assert built.name == name and built.info is not None and built.info.family == "transformers"
    assert all(t.device.type == "meta" for t in _tensors(built))
    assert not built.model.training
    meta = json.loads((CONFIG_DIR / f"{name}.json").read_text())["_fxenergy"]
    assert built.model.config._attn_implementation == meta.get("attn_implementation", "sdpa")
    assert getattr(built.model.config, "use_cache", False) is False
    if name in ROUNDED_PARAMS:
        assert _n_params(built.model) == pytest.approx(ROUNDED_PARAMS[name], rel=0.03)
    else:
        assert _n_params(built.model) == pytest.approx(EXPECTED_PARAMS[name], rel=0.01)


def test_text_inputs() -> None:
    built = build_model("gpt2", batch_size=2, seq_len=64)
    assert built.args == () and set(built.kwargs) == {"input_ids"}
    ids = built.kwargs["input_ids"]
    assert ids.shape == (2, 64) and ids.dtype == torch.long and ids.device.type == "meta"
    assert type(built.model).__name__ == "GPT2LMHeadModel"


def test_seq2seq_gets_decoder_input_ids() -> None:
    built = build_model("t5-small", batch_size=3, seq_len=16)
    assert {k: tuple(v.shape) for k, v in built.kwargs.items()} == {"input_ids": (3, 16), "decoder_input_ids": (3, 16)}


def test_hf_vision_input_and_image_size() -> None:
    (pixels,) = build_model("vit-base-patch16-224", batch_size=2).args
    assert pixels.shape == (2, 3, 224, 224) and pixels.dtype == torch.float32
    built = build_model("vit-base-patch16-224", image_size=384)
    assert built.args[0].shape[-1] == 384 and built.model.config.image_size == 384


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["gpt2", "resnet18", "vit-base-patch16-224"])
def test_dtype(name: str, dtype: torch.dtype) -> None:
    built = build_model(name, dtype=dtype)
    assert {p.dtype for p in built.model.parameters()} == {dtype}
    assert all(a.dtype == dtype for a in built.args)


# --- torchvision -------------------------------------------------------------------------------------


def test_list_models() -> None:
    infos = list_models()
    names = [i.name for i in infos]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert set(TV_NAMES) | set(BUNDLED) == set(names)
    assert all(isinstance(i, ModelInfo) and i.description and "\n" not in i.description for i in infos)
    by_name = {i.name: i for i in infos}
    assert by_name["resnet50"].family == "torchvision" and by_name["resnet50"].task == "image-classification"
    assert by_name["gpt2"] == ModelInfo("gpt2", "transformers", "causal-lm", "GPT-2 124M (LM head)")


@pytest.mark.parametrize("name", TV_NAMES)
def test_torchvision_model_builds_on_meta(name: str) -> None:
    weights = tvm.get_model_weights(name).DEFAULT
    built = build_model(name, batch_size=2)
    assert built.info is not None and built.info.family == "torchvision" and built.kwargs == {}
    assert all(t.device.type == "meta" for t in _tensors(built))
    assert not built.model.training
    size = weights.transforms.keywords["crop_size"]
    (image,) = built.args
    assert image.shape == (2, 3, size, size) and image.dtype == torch.float32
    # Same architecture as the published DEFAULT weights (googlenet/inception aux heads, vit_h_14 at 518).
    assert _n_params(built.model) == weights.meta["num_params"]


@pytest.mark.parametrize(
    ("name", "size"), [("inception_v3", 299), ("efficientnet_b7", 600), ("vit_h_14", 518), ("swin_v2_t", 256)]
)
def test_torchvision_default_sizes(name: str, size: int) -> None:
    assert build_model(name).args[0].shape[-2:] == (size, size)


def test_torchvision_image_size() -> None:
    assert build_model("resnet50", image_size=160).args[0].shape == (1, 3, 160, 160)
    vit = build_model("vit_b_16", image_size=384)
    assert vit.model.image_size == 384 and vit.args[0].shape[-1] == 384


# --- meta_init ---------------------------------------------------------------------------------------


def test_meta_init_moves_parameters_and_buffers_and_restores() -> None:
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer
    with meta_init():
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    assert all(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()])
    assert all(p.requires_grad for p in model.parameters())
    assert nn.Module.register_parameter is register_parameter and nn.Module.register_buffer is register_buffer
    with pytest.raises(RuntimeError), meta_init():
        raise RuntimeError("boom")
    assert nn.Module.register_parameter is register_parameter and nn.Module.register_buffer is register_buffer
    assert nn.Linear(2, 2).weight.device.type == "cpu"


# --- file:factory ------------------------------------------------------------------------------------

FACTORY_FILE = """
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x, scale=None):
        y = self.fc(self.conv(x).mean((2, 3)))
        return y if scale is None else y * scale

def module_only():
    return Tiny()

def with_args():
    return nn.Linear(5, 3), (torch.zeros(7, 5),)

def with_kwargs():
    return Tiny(), (torch.zeros(1, 3, 8, 8),), {"scale": torch.ones(2)}

def raises():
    raise ValueError("no weights\\nhere")

def bad_return():
    return 42

not_a_function = 3
"""


@pytest.fixture
def factory_file(tmp_path):
    path = tmp_path / "tiny_model.py"
    path.write_text(textwrap.dedent(FACTORY_FILE))
    return path


def test_factory_module_only(factory_file) -> None:
    built = build_model(f"{factory_file}:module_only", batch_size=2)
    assert built.info is None and type(built.model).__name__ == "Tiny" and not built.model.training
    assert built.args[0].shape == (2, 3, 224, 224) and built.args[0].device.type == "meta"
    assert build_model(f"{factory_file}:module_only", image_size=32).args[0].shape == (1, 3, 32, 32)
    assert next(built.model.parameters()).device.type == "cpu"  # real weights are left alone


def test_factory_with_args_and_kwargs(factory_file) -> None:
    built = build_model(f"{factory_file}:with_args")
    assert isinstance(built.model, nn.Linear) and built.args[0].shape == (7, 5) and built.kwargs == {}
    built = build_model(f"{factory_file}:with_kwargs", dtype=torch.float16)
    assert set(built.kwargs) == {"scale"} and built.kwargs["scale"].dtype == torch.float16
    assert built.model.fc.weight.dtype == torch.float16 and built.args[0].dtype == torch.float16


# --- errors ------------------------------------------------------------------------------------------

ERROR_CASES = [
    ("gtp2", {}, ["unknown model 'gtp2'", "gpt2", "fxenergy models"]),
    ("resnet5", {}, ["resnet50", "fxenergy models"]),
    ("not-a-model-at-all", {}, ["unknown model", "fxenergy models"]),
    ("gpt2", {"seq_len": 2048}, ["seq_len=2048", "1024"]),
    ("llama-2-7b", {"seq_len": 4097}, ["4096"]),
    ("bert-base-uncased", {"seq_len": 513}, ["512"]),
    ("gpt2", {"batch_size": 0}, ["batch_size", "positive", "0"]),
    ("gpt2", {"seq_len": -5}, ["seq_len", "positive"]),
    ("resnet50", {"image_size": 0}, ["image_size", "positive"]),
    ("vit_b_16", {"image_size": 100}, ["vit_b_16", "image_size=100", "224"]),
    ("vit-base-patch16-224", {"image_size": 100}, ["patch size 16"]),
    ("gpt2", {"dtype": torch.int8}, ["dtype", "float16"]),
]


@pytest.mark.parametrize(("name", "kwargs", "fragments"), ERROR_CASES)
def test_errors(name: str, kwargs: dict, fragments: list[str]) -> None:
    with pytest.raises(UserInputError) as exc:
        build_model(name, **kwargs)
    message = str(exc.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("{dir}/missing.py:make", ["missing.py", "not found"]),
        ("{file}:nope", ["'nope' is not defined", "tiny_model.py"]),
        ("{file}:not_a_function", ["not callable"]),
        ("{file}:raises", ["raises()", "ValueError: no weights here"]),
        ("{file}:bad_return", ["returned int", "nn.Module"]),
        ("{file}", ["no factory", ":factory"]),
        ("{broken}:make", ["importing", "ZeroDivisionError"]),
    ],
)
def test_factory_errors(factory_file, spec: str, fragments: list[str]) -> None:
    broken = factory_file.with_name("broken.py")
    broken.write_text("x = 1 / 0\n")
    with pytest.raises(UserInputError) as exc:
        build_model(spec.format(dir=factory_file.parent, file=factory_file, broken=broken))
    assert "\n" not in str(exc.value)
    for fragment in fragments:
        assert fragment in str(exc.value)
