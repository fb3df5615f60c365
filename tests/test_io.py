"""corenn.save / corenn.load and Module state dicts: round trips, atomicity, refusals."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import corenn
from corenn.io import ModelFileError

dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_])
arrays = dtypes.flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5)
scalars |= st.floats(allow_nan=False)
keys = st.text(alphabet="ab.x_0", min_size=1, max_size=4)
leaves = arrays | scalars
trees = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)


def assert_same(loaded, saved, where="obj"):
    """Equal structure, and arrays equal in dtype, shape and every bit."""
    if isinstance(saved, dict):
        assert isinstance(loaded, dict) and list(loaded) == list(saved), f"{where}: keys differ"
        for k in saved:
            assert_same(loaded[k], saved[k], f"{where}[{k!r}]")
    elif isinstance(saved, (list, tuple)):
        assert isinstance(loaded, list) and len(loaded) == len(saved), f"{where}: list differs"
        for i, (a, b) in enumerate(zip(loaded, saved, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(saved, np.ndarray):
        assert isinstance(loaded, np.ndarray), f"{where}: not an array"
        assert (loaded.dtype, loaded.shape) == (saved.dtype, saved.shape), f"{where}: dtype/shape"
        assert loaded.tobytes() == saved.tobytes(), f"{where}: array values differ"
    else:
        assert loaded == saved and type(loaded) is type(saved), f"{where}: {loaded!r} != {saved!r}"


def has_name_collision(tree) -> bool:
    """Whether two arrays of ``tree`` share a dotted name (save refuses those)."""
    names: list[str] = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*where, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*where, str(i)))
        elif isinstance(node, np.ndarray):
            names.append(".".join(where))

    walk(tree, ())
    return len(names) != len(set(names))


@given(obj=st.dictionaries(keys, trees, max_size=4))
def test_round_trip_preserves_structure_dtypes_and_bits(obj):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "state.npz"
        if has_name_collision(obj):
            with pytest.raises(ValueError, match="same name"):
                corenn.save(obj, path)
            assert not path.exists()
        else:
            corenn.save(obj, path)
            assert_same(corenn.load(path), obj)
            assert os.listdir(d) == ["state.npz"], "a temporary file was left behind"


def test_dotted_keys_and_nesting_are_reconstructed(tmp_path):
    obj = {"model": {"enc.weight": np.ones((2, 2))}, "model.x": np.zeros(1), "meta": [1, "a"]}
    corenn.save(obj, tmp_path / "m.npz")
    assert_same(corenn.load(tmp_path / "m.npz"), obj)


def test_failed_save_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    old = {"w": np.arange(6.0).reshape(2, 3)}
    corenn.save(old, path)
    old_bytes = path.read_bytes()
    real_write = np.lib.format.write_array

    def crash_midway(fp, array, **kwargs):
        real_write(fp, array, **kwargs)  # the first entry is written, then the "crash"
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(np.lib.format, "write_array", crash_midway)
    with pytest.raises(RuntimeError, match="disk on fire"):
        corenn.save({"w": np.zeros((2, 3)), "b": np.ones(3)}, path)
    with pytest.raises(RuntimeError, match="disk on fire"):
        corenn.save({"w": np.zeros(1)}, tmp_path / "new.npz")
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes, "the old file was modified"
    assert sorted(os.listdir(tmp_path)) == ["model.npz"], "temporary or partial files remain"
    assert_same(corenn.load(path), old)


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip_array_bytes(data: bytes) -> bytes:
    i = data.index(b"\x00\x00\xf0\x3f")  # inside the float64 payload of the ones
    return data[:i] + b"\xff\xff\xff\xff" + data[i + 4 :]


def _garbage(data: bytes) -> bytes:
    return b"not a zip file at all" * 10


def _empty(data: bytes) -> bytes:
    return b""


@pytest.mark.parametrize("damage", [_truncate, _flip_array_bytes, _garbage, _empty])
def test_corrupt_file_raises_model_file_error_naming_the_path(damage, tmp_path):
    path = tmp_path / "broken.npz"
    corenn.save({"w": np.ones(64), "meta": {"epoch": 3}}, path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ModelFileError, match="broken.npz"):
        corenn.load(path)
    assert issubclass(ModelFileError, ValueError)


def test_object_array_is_refused_on_load_and_save(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, ok=np.ones(2), evil=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ModelFileError, match=r"pickled\.npz.*'evil'"):
        corenn.load(path)
    with pytest.raises(TypeError, match="object arrays are refused"):
        corenn.save({"a": {"b": np.array([None], dtype=object)}}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_plain_npz_loads_as_flat_mapping(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.arange(3), b=np.eye(2))
    loaded = corenn.load(tmp_path / "plain.npz")
    assert_same(loaded, {"a": np.arange(3), "b": np.eye(2)})


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        corenn.load(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    "obj,error,match",
    [
        ({1: np.ones(1)}, TypeError, "keys must be str"),
        ({"a": {"b": object()}}, TypeError, "'a.b'.*unsupported type object"),
        ({"a.b": np.ones(1), "a": {"b": np.ones(1)}}, ValueError, "same name 'a.b'"),
        ([np.ones(1)], TypeError, "mapping"),
    ],
)
def test_save_rejects_bad_input(obj, error, match, tmp_path):
    with pytest.raises(error, match=match):
        corenn.save(obj, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


# -- modules ----------------------------------------------------------------------------------
class Tiny(corenn.Module):
    def __init__(self, rng: np.random.Generator):
        super().__init__()
        self.w = corenn.Parameter(rng.standard_normal((3, 2)))
        self.b = corenn.Parameter(rng.standard_normal(2))
        self.register_buffer("scale", rng.random(2))

    def forward(self, x):
        return (x @ self.w + self.b) * self.scale


def test_module_save_load_gives_identical_outputs(rng, tmp_path):
    model, other = Tiny(rng), Tiny(rng)
    x = corenn.tensor(rng.standard_normal((4, 3)), dtype=np.float64)
    corenn.save({"model": model.state_dict()}, tmp_path / "m.npz")
    other.load_state_dict(corenn.load(tmp_path / "m.npz")["model"])
    assert np.array_equal(other(x).data, model(x).data), "outputs differ after save/load"


def _rename(sd):
    sd["weight"] = sd.pop("w")
    return "weight"


def _reshape(sd):
    sd["b"] = np.zeros(3)
    return "'b'"


def _extra(sd):
    sd["extra.bias"] = np.zeros(2)
    return "extra.bias"


@pytest.mark.parametrize("corrupt", [_rename, _reshape, _extra])
def test_module_load_state_dict_names_the_bad_key_and_changes_nothing(corrupt, rng):
    model = Tiny(rng)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    bad = {k: v + 1.0 for k, v in model.state_dict().items()}
    key = corrupt(bad)
    with pytest.raises(corenn.StateDictError, match=key):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():
        assert v.tobytes() == before[k].tobytes(), f"{k} changed although loading failed"
