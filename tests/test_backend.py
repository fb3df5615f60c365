"""The dtype policy and device helpers of corenn.backend."""

import numpy as np
import pytest

from corenn import Tensor
from corenn.backend import as_array, check_float_dtype, get_array_module, to_device


def test_python_floats_default_to_float32_and_arrays_keep_their_dtype():
    assert as_array([1.0, 2.0]).dtype == np.float32
    assert as_array(np.ones(2)).dtype == np.float64
    assert as_array(np.float64(3.0)).dtype == np.float64  # numpy scalars are arrays, not floats
    assert as_array([1, 2]).dtype.kind == "i"
    assert as_array([1.0], dtype=np.float64).dtype == np.float64
    assert (Tensor([1.0]) * 2.5).dtype == np.float32  # a Python scalar takes the tensor's dtype


def test_check_float_dtype_refuses_other_dtypes():
    assert check_float_dtype("float64") == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        check_float_dtype(np.int32)


def test_array_module_and_device_transfer_on_cpu():
    x = np.arange(3.0)
    assert get_array_module(x, Tensor(x)) is np
    assert to_device(x, "cpu") is x
    with pytest.raises(ValueError, match="unknown device"):
        to_device(x, "tpu")
