"""Tangent algebra (zero, add, scale, move) for every differentiable type."""

import copy
import dataclasses
import enum
import math
import pickle

import numpy as np
import pytest

import pullback
from pullback import move
from pullback.runtime.objects import ObjectTangent
from pullback.runtime.tangents import (
    add,
    differentiable_fields,
    is_differentiable_value,
    scale,
    subtract,
    zeros_like,
)

# Numbers and arrays.


def test_float():
    assert zeros_like(2.5) == 0.0
    assert type(zeros_like(2.5)) is float
    assert add(1.5, 2.0) == 3.5
    assert scale(1.5, 2.0) == 3.0
    assert move(2.5, by=0.5) == 3.0
    assert type(move(2.5, by=np.float64(0.5))) is float


def test_numpy_float32_scalar():
    x = np.float32(1.5)
    assert zeros_like(x).dtype == np.float32
    moved = move(x, by=0.25)
    assert moved == np.float32(1.75)
    assert moved.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_keeps_dtype(dtype):
    x = np.array([1.0, 2.0, 3.0], dtype=dtype)
    zero = zeros_like(x)
    assert zero.dtype == dtype
    assert not zero.any()
    assert scale(x, 0.5).dtype == dtype
    assert add(x, x).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_moves_in_place(dtype):
    x = np.array([1.0, 2.0, 3.0], dtype=dtype)
    moved = move(x, by=np.array([0.5, -1.0, 0.0]))
    assert moved is x
    assert x.dtype == dtype
    np.testing.assert_array_equal(x, np.array([1.5, 1.0, 3.0], dtype=dtype))


def test_read_only_array_is_replaced():
    x = np.broadcast_to(np.float32(1.0), (3,))
    moved = move(x, by=np.ones(3))
    assert moved is not x
    assert moved.dtype == np.float32
    np.testing.assert_array_equal(moved, [2.0, 2.0, 2.0])


@pytest.mark.parametrize("value", [3, True, "text", np.arange(3), np.int64(4), None])
def test_values_without_tangent(value):
    assert not is_differentiable_value(value)
    assert zeros_like(value) is None
    assert move(value, by=None) is value


class Level(enum.IntEnum):
    LOW = 1


class Meters(float):
    pass


@pytest.mark.parametrize("value", [Level.LOW, (1, 2), [3, "x"], range(2), len, print, {"a": 1}])
def test_subclasses_and_containers_without_tangent(value):
    assert not is_differentiable_value(value)


@pytest.mark.parametrize("value", [Meters(2.0), np.float32(1.0), (1, 2.0), [3, np.ones(2)],
                                   {"a": 1.5}, 1j])
def test_subclasses_and_containers_with_tangent(value):
    assert is_differentiable_value(value)


def test_none_is_symbolic_zero():
    x = np.ones(2)
    assert add(None, x) is x
    assert add(x, None) is x
    assert scale(None, 3.0) is None
    assert move(x, by=None) is x


# Containers.


def test_tuple_structure():
    value = (1.0, np.ones(2, np.float32), 3)
    zero = zeros_like(value)
    assert isinstance(zero, tuple)
    assert zero[0] == 0.0
    assert zero[1].dtype == np.float32
    assert zero[2] is None
    total = add((1.0, np.ones(2), None), (2.0, np.ones(2), None))
    assert total[0] == 3.0
    np.testing.assert_array_equal(total[1], [2.0, 2.0])


def test_tuple_move_returns_new_tuple():
    array = np.zeros(2)
    value = (1.0, array, 7)
    moved = move(value, by=(0.5, np.ones(2), None))
    assert isinstance(moved, tuple)
    assert moved[0] == 1.5
    assert moved[1] is array
    np.testing.assert_array_equal(array, [1.0, 1.0])
    assert moved[2] == 7


def test_list_moves_in_place():
    value = [1.0, np.zeros(2)]
    moved = move(value, by=[2.0, np.ones(2)])
    assert moved is value
    assert value[0] == 3.0
    np.testing.assert_array_equal(value[1], [1.0, 1.0])


def test_list_move_rejects_length_mismatch():
    with pytest.raises(TypeError, match="sequence of 2 items"):
        move([1.0, 2.0], by=[1.0])


def test_dict_structure_and_move():
    value = {"w": np.ones(2, np.float32), "steps": 3, "scale": 2.0}
    zero = zeros_like(value)
    assert set(zero) == {"w", "steps", "scale"}
    assert zero["w"].dtype == np.float32
    assert zero["steps"] is None
    doubled = scale({"w": np.ones(2), "scale": 1.0}, 2.0)
    assert doubled["scale"] == 2.0
    moved = move(value, by={"w": np.ones(2), "scale": -0.5})
    assert moved is value
    np.testing.assert_array_equal(value["w"], [2.0, 2.0])
    assert value["w"].dtype == np.float32
    assert value["scale"] == 1.5
    assert value["steps"] == 3


def test_nested_containers():
    value = [{"a": (1.0, np.ones(2))}, [np.zeros(1)]]
    tangent = [{"a": (1.0, np.ones(2))}, [np.ones(1)]]
    move(value, by=scale(tangent, 2.0))
    assert value[0]["a"][0] == 3.0
    np.testing.assert_array_equal(value[0]["a"][1], [3.0, 3.0])
    np.testing.assert_array_equal(value[1][0], [2.0])


# Objects.


def relu(x):
    return np.maximum(x, 0)


class Affine:
    def __init__(self):
        self.weight = np.ones((2, 2), np.float32)
        self.gain = 1.5
        self.name = "affine"
        self.units = 2
        self.activation = relu


@dataclasses.dataclass
class Params:
    weight: np.ndarray
    gain: float
    label: str = "params"
    count: int = 1


@dataclasses.dataclass(frozen=True)
class FrozenParams:
    weight: np.ndarray
    gain: float


@dataclasses.dataclass(slots=True)
class SlottedParams:
    weight: np.ndarray
    gain: float


class Block:
    def __init__(self):
        self.inner = Affine()
        self.layers = [Affine(), Affine()]
        self.bias = np.zeros(2)


def test_plain_object_fields():
    affine = Affine()
    assert set(differentiable_fields(affine)) == {"weight", "gain"}
    zero = zeros_like(affine)
    assert isinstance(zero, ObjectTangent)
    assert sorted(zero) == ["gain", "weight"]
    assert zero.weight.dtype == np.float32
    assert zero.gain == 0.0


def test_dataclass_fields():
    params = Params(np.ones(3), 2.0)
    zero = zeros_like(params)
    assert sorted(zero.fields()) == ["gain", "weight"]
    assert zero.weight.shape == (3,)


def test_slotted_dataclass_fields():
    params = SlottedParams(np.ones(3), 2.0)
    assert is_differentiable_value(params)
    assert sorted(zeros_like(params).fields()) == ["gain", "weight"]
    move(params, by=ObjectTangent(gain=1.0, weight=np.ones(3)))
    assert params.gain == 3.0
    np.testing.assert_array_equal(params.weight, [2.0, 2.0, 2.0])


def test_object_tangent_arithmetic():
    a = ObjectTangent(w=np.array([1.0, 2.0]), s=1.0)
    b = ObjectTangent(w=np.array([0.5, 0.5]))
    np.testing.assert_array_equal((a + b).w, [1.5, 2.5])
    assert (a + b).s == 1.0
    np.testing.assert_array_equal((a - b).w, [0.5, 1.5])
    np.testing.assert_array_equal((2.0 * a).w, [2.0, 4.0])
    np.testing.assert_array_equal((a * 2.0).w, [2.0, 4.0])
    np.testing.assert_array_equal((a / 2.0).w, [0.5, 1.0])
    np.testing.assert_array_equal((-a).w, [-1.0, -2.0])
    assert (np.float32(2.0) * a).s == 2.0
    np.testing.assert_array_equal(sum([a, b]).w, [1.5, 2.5])
    assert add(a, None) is a
    np.testing.assert_array_equal(subtract(a, b).w, [0.5, 1.5])


def test_object_tangent_equality_and_zero():
    a = ObjectTangent(w=np.array([1.0, 2.0]), inner=ObjectTangent(s=1.0))
    assert a == ObjectTangent(w=np.array([1.0, 2.0]), inner=ObjectTangent(s=1.0))
    assert a != ObjectTangent(w=np.array([1.0, 3.0]), inner=ObjectTangent(s=1.0))
    zero = a.zero()
    assert zero == ObjectTangent(w=np.zeros(2), inner=ObjectTangent(s=0.0))
    assert zeros_like(a) == zero


def test_object_tangent_missing_field_message():
    with pytest.raises(AttributeError, match=r"no field 'b'; its fields are \['w'\]"):
        _ = ObjectTangent(w=1.0).b


def test_object_tangent_copies_and_pickles():
    affine = Affine()
    tangent = ObjectTangent.of(affine, {"gain": 2.0})
    copied = copy.deepcopy(tangent)
    assert copied.gain == 2.0
    assert copied.weight.shape == (2, 2)
    restored = pickle.loads(pickle.dumps(ObjectTangent(w=np.ones(2))))
    np.testing.assert_array_equal(restored.w, [1.0, 1.0])


def test_tangent_of_object_reads_unstored_fields_as_zero():
    affine = Affine()
    tangent = ObjectTangent.of(affine, {"gain": 2.0})
    assert tangent.stored_fields() == {"gain": 2.0}
    assert tangent.weight.shape == (2, 2)
    assert not tangent.weight.any()
    assert sorted(tangent) == ["gain", "weight"]


def test_object_moves_in_place():
    affine = Affine()
    weight = affine.weight
    tangent = ObjectTangent(weight=np.full((2, 2), 0.5), gain=-0.5)
    assert move(affine, by=tangent) is affine
    assert affine.weight is weight
    assert affine.weight.dtype == np.float32
    np.testing.assert_array_equal(affine.weight, np.full((2, 2), 1.5))
    assert affine.gain == 1.0
    assert affine.name == "affine"
    assert affine.units == 2


def test_dataclass_moves_in_place():
    params = Params(np.ones(2), 2.0)
    move(params, by=scale(ObjectTangent(weight=np.ones(2), gain=1.0), -1.0))
    np.testing.assert_array_equal(params.weight, [0.0, 0.0])
    assert params.gain == 1.0


def test_frozen_dataclass_float_field_cannot_move():
    params = FrozenParams(np.ones(2), 2.0)
    move(params, by=ObjectTangent(weight=np.ones(2)))
    np.testing.assert_array_equal(params.weight, [2.0, 2.0])
    with pytest.raises(TypeError, match="cannot move the field 'gain' of a FrozenParams"):
        move(params, by=ObjectTangent(gain=1.0))


def test_object_move_rejects_array_tangent():
    with pytest.raises(TypeError, match="the tangent of an object is an ObjectTangent"):
        move(Affine(), by=np.ones(2))


def test_nested_objects():
    block = Block()
    zero = zeros_like(block)
    assert sorted(zero) == ["bias", "inner", "layers"]
    assert sorted(zero.inner) == ["gain", "weight"]
    assert len(zero.layers) == 2
    assert zero.layers[1].weight.dtype == np.float32
    step = ObjectTangent(
        inner=ObjectTangent(gain=1.0),
        layers=[None, ObjectTangent(weight=np.ones((2, 2)))],
        bias=np.ones(2),
    )
    move(block, by=step)
    assert block.inner.gain == 2.5
    np.testing.assert_array_equal(block.layers[0].weight, np.ones((2, 2)))
    np.testing.assert_array_equal(block.layers[1].weight, np.full((2, 2), 2.0))
    np.testing.assert_array_equal(block.bias, [1.0, 1.0])


def test_object_without_differentiable_fields():
    class Settings:
        def __init__(self):
            self.name = "x"
            self.count = 3
            self.activation = relu

    assert not is_differentiable_value(Settings())
    assert zeros_like(Settings()) is None


def test_reference_cycle_terminates():
    class Node:
        pass

    node = Node()
    node.parent = node
    assert not is_differentiable_value(node)
    node.value = 1.0
    assert is_differentiable_value(node)
    assert sorted(differentiable_fields(node)) == ["value"]


def test_no_derivative_fields_are_left_out():
    class Base:
        __no_derivative_fields__ = ("rate",)

    class Scaled(Base):
        __no_derivative_fields__ = ("momentum",)

        def __init__(self):
            self.rate = 0.5
            self.momentum = 0.9
            self.weight = np.ones(2)

    assert sorted(differentiable_fields(Scaled())) == ["weight"]


# A type with its own tangent space.


class Angle:
    """An angle kept in [0, 2 pi); its tangent is a float in radians."""

    def __init__(self, radians):
        self.radians = radians % (2 * math.pi)

    def __tangent_zero__(self):
        return 0.0

    def __tangent_move__(self, tangent):
        self.radians = (self.radians + tangent) % (2 * math.pi)


def sine_of(angle):
    return math.sin(angle.radians)


@pullback.derivative_of(sine_of)
def sine_of_vjp(angle):
    return math.sin(angle.radians), lambda g: g * math.cos(angle.radians)


def angle_loss(angle):
    return sine_of(angle) * 2.0


def test_custom_tangent_space():
    angle = Angle(6.0)
    assert is_differentiable_value(angle)
    assert zeros_like(angle) == 0.0
    assert move(angle, by=1.0) is angle
    assert angle.radians == pytest.approx(7.0 - 2 * math.pi)


def test_custom_tangent_gradient_and_move():
    angle = Angle(1.0)
    gradient = pullback.gradient(angle_loss)(angle)
    assert gradient == pytest.approx(2.0 * math.cos(1.0))
    move(angle, by=scale(gradient, -0.1))
    assert angle.radians == pytest.approx(1.0 - 0.2 * math.cos(1.0))
