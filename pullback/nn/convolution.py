"""Convolution and pooling on NHWC arrays, vectorized, with registered VJPs.

Images are (batch, height, width, channels) and filters (height, width,
in_channels, out_channels), as in TensorFlow and Swift for TensorFlow.
Padding follows TensorFlow: "valid" uses only whole windows, and "same"
pads so the output has `ceil(size / stride)` rows and columns, with any odd
padding row or column at the bottom or right.

Windows come from `np.lib.stride_tricks.sliding_window_view`, so no Python
loop runs over pixels or over the batch. The pullbacks scatter the
cotangents of overlapping windows with one strided add per window offset
(kernel height times width adds).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pullback import derivative_of

PADDINGS = ("valid", "same")


def pair(value, name: str) -> tuple[int, int]:
    """Return `value` as a (height, width) pair of positive ints; an int is square."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        pair_value = (int(value), int(value))
    else:
        try:
            pair_value = tuple(int(v) for v in value)
        except TypeError:
            pair_value = ()
    if len(pair_value) != 2 or min(pair_value) < 1:
        raise ValueError(
            f"{name} must be a positive int or a (height, width) pair of "
            f"positive ints, got {value!r}"
        )
    return pair_value


def check_padding(padding: str) -> str:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


def _padding_amounts(size: int, window: int, stride: int, padding: str):
    """Return (output size, padding before, padding after) along one axis."""
    if padding == "valid":
        if size < window:
            raise ValueError(
                f"a window of {window} does not fit an input of {size} with "
                "padding='valid'; use padding='same' or a larger input"
            )
        return (size - window) // stride + 1, 0, 0
    output = math.ceil(size / stride)
    total = max((output - 1) * stride + window - size, 0)
    return output, total // 2, total - total // 2


class _Geometry:
    """Output size and padding of a windowed operation on NHWC input."""

    def __init__(self, shape, window, strides, padding):
        if len(shape) != 4:
            raise ValueError(
                f"expected a batch of images of shape (batch, height, width, "
                f"channels), got an array of shape {tuple(shape)}"
            )
        self.shape = tuple(shape)
        self.window = window
        self.strides = strides
        height, top, bottom = _padding_amounts(shape[1], window[0], strides[0], padding)
        width, left, right = _padding_amounts(shape[2], window[1], strides[1], padding)
        self.output = (height, width)
        self.pads = ((0, 0), (top, bottom), (left, right), (0, 0))
        self.padded = any((top, bottom, left, right))
        self.padded_shape = (shape[0], shape[1] + top + bottom, shape[2] + left + right,
                             shape[3])

    def pad(self, x, value=0):
        if not self.padded:
            return x
        return np.pad(x, self.pads, constant_values=value)

    def windows(self, padded):
        """Return a view of shape (batch, out_h, out_w, channels, win_h, win_w)."""
        view = sliding_window_view(padded, self.window, axis=(1, 2))
        height, width = self.output
        return view[:, : height * self.strides[0] : self.strides[0],
                    : width * self.strides[1] : self.strides[1]]

    def offset_slice(self, i: int, j: int):
        """Index of the padded-input elements at window offset (i, j) of every window."""
        height, width = self.output
        stride_h, stride_w = self.strides
        return (slice(None), slice(i, i + stride_h * (height - 1) + 1, stride_h),
                slice(j, j + stride_w * (width - 1) + 1, stride_w), slice(None))

    def unpad(self, padded_bar):
        if not self.padded:
            return padded_bar
        (_, _), (top, _), (left, _), (_, _) = self.pads
        return padded_bar[:, top : top + self.shape[1], left : left + self.shape[2]]


# Convolution.


def _conv2d_geometry(x, filter, strides, padding) -> _Geometry:
    if np.ndim(filter) != 4:
        raise ValueError(
            "the filter must have shape (height, width, in_channels, "
            f"out_channels), got shape {np.shape(filter)}"
        )
    geometry = _Geometry(np.shape(x), np.shape(filter)[:2], pair(strides, "strides"),
                         check_padding(padding))
    if np.shape(x)[3] != np.shape(filter)[2]:
        raise ValueError(
            f"the input has {np.shape(x)[3]} channels but the filter expects "
            f"{np.shape(filter)[2]} (filter shape {np.shape(filter)})"
        )
    return geometry


def _conv2d_columns(x, geometry: _Geometry):
    """Return the im2col matrix: one row per output pixel, (win_h, win_w, channels) wide."""
    windows = geometry.windows(geometry.pad(x))
    batch, height, width = windows.shape[:3]
    # (batch, out_h, out_w, win_h, win_w, channels), copied to rows.
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(batch * height * width, -1)


def conv2d(x, filter, strides=(1, 1), padding="valid"):
    """Return the 2-D cross-correlation of NHWC `x` with an HWIO `filter`.

    The result has shape (batch, out_h, out_w, out_channels). Like
    `tf.nn.conv2d`, the filter is not flipped.
    """
    geometry = _conv2d_geometry(x, filter, strides, padding)
    columns = _conv2d_columns(x, geometry)
    kernel = np.reshape(filter, (-1, np.shape(filter)[3]))
    y = columns @ kernel
    return y.reshape(geometry.shape[0], *geometry.output, -1)


@derivative_of(conv2d, wrt=("x", "filter"))
def _conv2d_vjp(x, filter, strides=(1, 1), padding="valid"):
    geometry = _conv2d_geometry(x, filter, strides, padding)
    columns = _conv2d_columns(x, geometry)
    kernel = np.reshape(filter, (-1, np.shape(filter)[3]))
    y = (columns @ kernel).reshape(geometry.shape[0], *geometry.output, -1)

    def conv2d_pullback(y_bar):
        y_bar_rows = np.reshape(y_bar, (columns.shape[0], -1))
        filter_bar = (columns.T @ y_bar_rows).reshape(np.shape(filter))
        columns_bar = (y_bar_rows @ kernel.T).reshape(
            *y.shape[:3], *geometry.window, geometry.shape[3]
        )
        x_bar = _scatter_windows(columns_bar, geometry, _cotangent_dtype(x, y_bar))
        return x_bar, filter_bar.astype(_cotangent_dtype(filter, y_bar), copy=False)

    return y, conv2d_pullback


def _cotangent_dtype(primal, cotangent):
    """Return the primal's floating dtype, which its cotangent keeps."""
    dtype = np.result_type(primal)
    return dtype if dtype.kind in "fc" else np.result_type(cotangent)


def _scatter_windows(windows_bar, geometry: _Geometry, dtype):
    """Add each window's cotangent (batch, out_h, out_w, win_h, win_w, channels)
    back onto the input it was cut from."""
    padded_bar = np.zeros(geometry.padded_shape, dtype=dtype)
    for i in range(geometry.window[0]):
        for j in range(geometry.window[1]):
            padded_bar[geometry.offset_slice(i, j)] += windows_bar[:, :, :, i, j]
    return geometry.unpad(padded_bar)


# Pooling.


def _pool_geometry(x, pool_size, strides, padding) -> _Geometry:
    pool_size = pair(pool_size, "pool_size")
    strides = pool_size if strides is None else pair(strides, "strides")
    return _Geometry(np.shape(x), pool_size, strides, check_padding(padding))


def _max_pool_choices(x, geometry: _Geometry):
    """Return the window maxima and the flat offset of each one in its window."""
    lowest = -np.inf if np.result_type(x).kind == "f" else np.iinfo(np.result_type(x)).min
    padded = geometry.pad(x, lowest)
    windows = geometry.windows(padded)
    flat = windows.reshape(*windows.shape[:4], -1)
    # On ties the first maximum in row-major window order takes the cotangent.
    choices = np.argmax(flat, axis=-1)
    y = np.take_along_axis(flat, choices[..., None], axis=-1)[..., 0]
    return y, choices


def max_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Return the maximum of each `pool_size` window of NHWC `x`.

    `strides` defaults to `pool_size`. With padding "same" the padding never
    wins a maximum.
    """
    geometry = _pool_geometry(x, pool_size, strides, padding)
    return _max_pool_choices(x, geometry)[0]


@derivative_of(max_pool2d, wrt="x")
def _max_pool2d_vjp(x, pool_size=(2, 2), strides=None, padding="valid"):
    geometry = _pool_geometry(x, pool_size, strides, padding)
    y, choices = _max_pool_choices(x, geometry)

    def max_pool2d_pullback(y_bar):
        padded_bar = np.zeros(geometry.padded_shape, dtype=_cotangent_dtype(x, y_bar))
        window_width = geometry.window[1]
        for offset in range(geometry.window[0] * window_width):
            i, j = divmod(offset, window_width)
            padded_bar[geometry.offset_slice(i, j)] += np.where(choices == offset, y_bar, 0)
        return geometry.unpad(padded_bar)

    return y, max_pool2d_pullback


def _average_pool_counts(geometry: _Geometry, dtype):
    """Return how many input elements, padding excluded, each window averages."""
    if not geometry.padded:
        return np.asarray(geometry.window[0] * geometry.window[1], dtype=dtype)
    ones = np.ones((1, *geometry.shape[1:3], 1), dtype=dtype)
    padded = np.pad(ones, geometry.pads)
    windows = sliding_window_view(padded, geometry.window, axis=(1, 2))
    height, width = geometry.output
    windows = windows[:, : height * geometry.strides[0] : geometry.strides[0],
                      : width * geometry.strides[1] : geometry.strides[1]]
    return windows.sum(axis=(-2, -1))


def avg_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Return the mean of each `pool_size` window of NHWC `x`.

    `strides` defaults to `pool_size`. With padding "same" each window
    averages only its input elements, as TensorFlow does.
    """
    geometry = _pool_geometry(x, pool_size, strides, padding)
    windows = geometry.windows(geometry.pad(x))
    counts = _average_pool_counts(geometry, np.result_type(x))
    return windows.sum(axis=(-2, -1)) / counts


@derivative_of(avg_pool2d, wrt="x")
def _avg_pool2d_vjp(x, pool_size=(2, 2), strides=None, padding="valid"):
    geometry = _pool_geometry(x, pool_size, strides, padding)
    windows = geometry.windows(geometry.pad(x))
    counts = _average_pool_counts(geometry, np.result_type(x))
    y = windows.sum(axis=(-2, -1)) / counts

    def avg_pool2d_pullback(y_bar):
        share = y_bar / counts
        padded_bar = np.zeros(geometry.padded_shape, dtype=_cotangent_dtype(x, y_bar))
        for i in range(geometry.window[0]):
            for j in range(geometry.window[1]):
                padded_bar[geometry.offset_slice(i, j)] += share
        return geometry.unpad(padded_bar)

    return y, avg_pool2d_pullback
