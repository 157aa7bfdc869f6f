"""Convolution and pooling on NHWC arrays, vectorized, with registered VJPs.

Images are (batch, height, width, channels) and filters (height, width,
in_channels, out_channels), as in TensorFlow and Swift for TensorFlow.
Padding follows TensorFlow: "valid" uses only whole windows, and "same"
pads so the output has `ceil(size / stride)` rows and columns, with any odd
padding row or column at the bottom or right.

No Python loop runs over pixels or over the batch. Each operation loops
over the offsets inside a window (3 x 3 = 9 for a 3x3 filter), and at each
offset handles the strided slice of the input that every window reads there,
for all images and channels at once. Convolution gathers these slices into
an im2col matrix and multiplies it by the filter; its pullback and the
pooling pullbacks add cotangents back slice by slice, so overlapping
windows accumulate.
"""

from __future__ import annotations

import math

import numpy as np

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
    """Return `padding` if it is "valid" or "same", else raise ValueError."""
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
        self.window = tuple(window)
        self.strides = strides
        height, top, bottom = _padding_amounts(shape[1], window[0], strides[0], padding)
        width, left, right = _padding_amounts(shape[2], window[1], strides[1], padding)
        self.output = (height, width)
        self.padded = any((top, bottom, left, right))
        self.interior = (slice(None), slice(top, top + shape[1]),
                         slice(left, left + shape[2]), slice(None))
        self.padded_shape = (shape[0], shape[1] + top + bottom, shape[2] + left + right,
                             shape[3])

    def offsets(self):
        """Yield each window offset (i, j), row by row."""
        for i in range(self.window[0]):
            for j in range(self.window[1]):
                yield i, j

    def pad(self, x, value=0):
        """Return `x` surrounded by `value` to the padded shape."""
        if not self.padded:
            return x
        padded = np.full(self.padded_shape, value, dtype=np.result_type(x))
        padded[self.interior] = x
        return padded

    def at_offset(self, i: int, j: int):
        """Index of the padded-input elements at offset (i, j) of every window."""
        height, width = self.output
        stride_h, stride_w = self.strides
        return (slice(None), slice(i, i + stride_h * (height - 1) + 1, stride_h),
                slice(j, j + stride_w * (width - 1) + 1, stride_w), slice(None))

    def unpad(self, padded_bar):
        """Return the part of a padded-input cotangent that belongs to the input."""
        return padded_bar[self.interior] if self.padded else padded_bar


def _cotangent_dtype(primal, cotangent):
    """Return the primal's floating dtype, which its cotangent keeps."""
    dtype = np.result_type(primal)
    return dtype if dtype.kind in "fc" else np.result_type(cotangent)


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
    """Return the im2col matrix: one row per output pixel, holding its window
    in (win_h, win_w, channels) order."""
    padded = geometry.pad(x)
    batch, channels = geometry.shape[0], geometry.shape[3]
    columns = np.empty((batch, *geometry.output, *geometry.window, channels),
                       dtype=np.result_type(x))
    for i, j in geometry.offsets():
        columns[:, :, :, i, j] = padded[geometry.at_offset(i, j)]
    return columns.reshape(batch * geometry.output[0] * geometry.output[1], -1)


def _conv2d(x, filter, bias, strides, padding):
    """Return the convolution, its im2col matrix, the filter as a matrix and the geometry."""
    geometry = _conv2d_geometry(x, filter, strides, padding)
    columns = _conv2d_columns(x, geometry)
    kernel = np.reshape(filter, (-1, np.shape(filter)[3]))
    y = columns @ kernel
    if bias is not None:
        y += bias
    y = y.reshape(geometry.shape[0], *geometry.output, -1)
    return y, columns, kernel, geometry


def conv2d(x, filter, strides=(1, 1), padding="valid", bias=None):
    """Return the 2-D cross-correlation of NHWC `x` with an HWIO `filter`.

    The result has shape (batch, out_h, out_w, out_channels). Like
    `tf.nn.conv2d`, the filter is not flipped. `bias`, of shape
    (out_channels,), is added to every output pixel when given; adding it
    here saves an array the size of the output.
    """
    return _conv2d(x, filter, bias, strides, padding)[0]


@derivative_of(conv2d, wrt=("x", "filter", "bias"))
def _conv2d_vjp(x, filter, strides=(1, 1), padding="valid", bias=None):
    y, columns, _, geometry = _conv2d(x, filter, bias, strides, padding)
    # The pullback rebuilds the im2col matrix from `x`, which callers keep
    # anyway, instead of holding it between the passes.
    del columns

    def conv2d_pullback(y_bar):
        columns = _conv2d_columns(x, geometry)
        y_bar_rows = np.reshape(y_bar, (columns.shape[0], -1))
        filter_bar = (columns.T @ y_bar_rows).reshape(np.shape(filter))
        del columns
        filter_bar = filter_bar.astype(_cotangent_dtype(filter, y_bar), copy=False)

        bias_bar = None
        if bias is not None:
            # A matrix-vector product sums the rows several times faster
            # than NumPy's reduction along the first axis.
            ones = np.ones(y_bar_rows.shape[0], dtype=y_bar_rows.dtype)
            bias_bar = (ones @ y_bar_rows).astype(_cotangent_dtype(bias, y_bar), copy=False)

        padded_bar = np.zeros(geometry.padded_shape, dtype=_cotangent_dtype(x, y_bar))
        batch, channels = geometry.shape[0], geometry.shape[3]
        kernel_h, kernel_w, _, out_channels = np.shape(filter)
        if kernel_h * kernel_w * channels <= out_channels:
            # The cotangent of the im2col matrix is no larger than y_bar, so
            # one matrix product computes it (a first layer, few channels).
            windows_bar = (y_bar_rows @ np.reshape(filter, (-1, out_channels)).T).reshape(
                batch, *geometry.output, kernel_h, kernel_w, channels
            )
            for i, j in geometry.offsets():
                padded_bar[geometry.at_offset(i, j)] += windows_bar[:, :, :, i, j]
        else:
            # One matrix product per window offset, so each temporary is the
            # size of the input, not of the im2col matrix.
            input_shape = (batch, *geometry.output, channels)
            for i, j in geometry.offsets():
                offset_bar = (y_bar_rows @ filter[i, j].T).reshape(input_shape)
                padded_bar[geometry.at_offset(i, j)] += offset_bar
        return geometry.unpad(padded_bar), filter_bar, bias_bar

    return y, conv2d_pullback


# Pooling.


def _pool_geometry(x, pool_size, strides, padding) -> _Geometry:
    pool_size = pair(pool_size, "pool_size")
    strides = pool_size if strides is None else pair(strides, "strides")
    return _Geometry(np.shape(x), pool_size, strides, check_padding(padding))


def _max_pool(x, geometry: _Geometry):
    """Return the window maxima and the padded input they were taken from.

    A NaN in a window makes its maximum NaN, as with `np.max`.
    """
    dtype = np.result_type(x)
    lowest = -np.inf if dtype.kind == "f" else np.iinfo(dtype).min
    padded = geometry.pad(x, lowest)
    maxima = None
    for i, j in geometry.offsets():
        candidate = padded[geometry.at_offset(i, j)]
        if maxima is None:
            maxima = candidate.copy()
        else:
            np.maximum(maxima, candidate, out=maxima)
    return maxima, padded


def max_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Return the maximum of each `pool_size` window of NHWC `x`.

    `strides` defaults to `pool_size`. With padding "same" the padding never
    wins a maximum.
    """
    geometry = _pool_geometry(x, pool_size, strides, padding)
    return _max_pool(x, geometry)[0]


@derivative_of(max_pool2d, wrt="x")
def _max_pool2d_vjp(x, pool_size=(2, 2), strides=None, padding="valid"):
    geometry = _pool_geometry(x, pool_size, strides, padding)
    y, padded = _max_pool(x, geometry)

    def max_pool2d_pullback(y_bar):
        # Each window's cotangent goes to the first element, in row-major
        # window order, equal to its maximum: `unclaimed` marks the windows
        # whose maximum no earlier offset matched.
        padded_bar = np.zeros(geometry.padded_shape, dtype=_cotangent_dtype(x, y_bar))
        # Windows that do not overlap write each element at most once, so
        # the product goes straight into place.
        overlapping = any(s < w for s, w in zip(geometry.strides, geometry.window, strict=True))
        unclaimed = None
        last = geometry.window[0] * geometry.window[1] - 1
        for offset, (i, j) in enumerate(geometry.offsets()):
            index = geometry.at_offset(i, j)
            hit = padded[index] == y
            if unclaimed is None:
                unclaimed = ~hit
            else:
                hit &= unclaimed
                if offset < last:
                    unclaimed ^= hit
            if overlapping:
                padded_bar[index] += y_bar * hit
            else:
                np.multiply(y_bar, hit, out=padded_bar[index])
        return geometry.unpad(padded_bar)

    return y, max_pool2d_pullback


def _window_sums(padded, geometry: _Geometry):
    total = None
    for i, j in geometry.offsets():
        part = padded[geometry.at_offset(i, j)]
        total = part.copy() if total is None else np.add(total, part, out=total)
    return total


def _average_pool_counts(geometry: _Geometry, dtype):
    """Return how many input elements, padding excluded, each window averages."""
    if not geometry.padded:
        return np.asarray(geometry.window[0] * geometry.window[1], dtype=dtype)
    ones = geometry.pad(np.ones((geometry.shape[0], *geometry.shape[1:3], 1), dtype=dtype))
    return _window_sums(ones[:1], geometry)


def _avg_pool(x, pool_size, strides, padding):
    geometry = _pool_geometry(x, pool_size, strides, padding)
    dtype = np.result_type(x)
    if dtype.kind not in "fc":
        dtype = np.result_type(float)
    sums = _window_sums(geometry.pad(np.asarray(x, dtype=dtype)), geometry)
    counts = _average_pool_counts(geometry, dtype)
    return sums / counts, counts, geometry


def avg_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Return the mean of each `pool_size` window of NHWC `x`.

    `strides` defaults to `pool_size`. With padding "same" each window
    averages only its input elements, as TensorFlow does.
    """
    return _avg_pool(x, pool_size, strides, padding)[0]


@derivative_of(avg_pool2d, wrt="x")
def _avg_pool2d_vjp(x, pool_size=(2, 2), strides=None, padding="valid"):
    y, counts, geometry = _avg_pool(x, pool_size, strides, padding)

    def avg_pool2d_pullback(y_bar):
        share = y_bar / counts
        padded_bar = np.zeros(geometry.padded_shape, dtype=_cotangent_dtype(x, y_bar))
        for i, j in geometry.offsets():
            padded_bar[geometry.at_offset(i, j)] += share
        return geometry.unpad(padded_bar)

    return y, avg_pool2d_pullback
