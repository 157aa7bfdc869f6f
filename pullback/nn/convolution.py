"""Convolution and pooling on NHWC arrays, vectorized, with registered VJPs.

Images are (batch, height, width, channels) and filters (height, width,
in_channels, out_channels), as in TensorFlow and Swift for TensorFlow.
Padding follows TensorFlow: "valid" uses only whole windows, and "same"
pads so the output has `ceil(size / stride)` rows and columns, with any odd
padding row or column at the bottom or right.

No Python loop runs over pixels or over the batch. Each operation loops
over the offsets inside a window (3 x 3 = 9 for a 3x3 filter), and at each
offset handles the strided slice of the input that every window reads there,
for all images and channels at once. Convolution either gathers these
slices into an im2col matrix and multiplies it by the filter, or multiplies
each slice by the filter's part for that offset (see `_uses_columns`). Its
pullback and the pooling pullbacks add cotangents back slice by slice, so
overlapping windows accumulate. Slices are cut from the unpadded input where
possible, so "same" padding costs no padded copy.
"""

from __future__ import annotations

import functools
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
        self.before = (top, left)
        self.padded = any((top, bottom, left, right))
        self.interior = (slice(None), slice(top, top + shape[1]),
                         slice(left, left + shape[2]), slice(None))
        self.padded_shape = (shape[0], shape[1] + top + bottom, shape[2] + left + right,
                             shape[3])
        # `inside_at_offset` by offset, filled as offsets are first asked for.
        self._inside = {}

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

    def inside_at_offset(self, i: int, j: int):
        """Return (output index, input index) of the windows whose element at
        offset (i, j) lies inside the unpadded input, or None if none does.

        The two indices select arrays of equal shape, for all images and
        channels, so no padded copy of the input is needed.
        """
        inside = self._inside.get((i, j), False)
        if inside is False:
            inside = self._inside[i, j] = self._find_inside(i, j)
        return inside

    def _find_inside(self, i: int, j: int):
        spans = [_inside_span(*axis) for axis in zip(
            self.shape[1:3], self.output, (i, j), self.strides, self.before, strict=True)]
        if None in spans:
            return None
        (out_h, in_h), (out_w, in_w) = spans
        return (slice(None), out_h, out_w), (slice(None), in_h, in_w)

    def unpad(self, padded_bar):
        """Return the part of a padded-input cotangent that belongs to the input."""
        return padded_bar[self.interior] if self.padded else padded_bar


@functools.lru_cache(maxsize=256)
def _geometry(shape, window, strides, padding) -> _Geometry:
    """Return the geometry of a windowed operation, shared by every call
    with the same shapes, so its window indices are computed once."""
    return _Geometry(shape, window, strides, padding)


def _inside_span(size: int, output: int, offset: int, stride: int, before: int):
    """Return (output slice, input slice) along one axis for the outputs `o`
    whose input position `o * stride + offset - before` lies in 0..size-1."""
    first = max(0, -(-(before - offset) // stride))
    last = min(output - 1, (size - 1 + before - offset) // stride)
    if last < first:
        return None
    start = first * stride + offset - before
    return slice(first, last + 1), slice(start, start + (last - first) * stride + 1, stride)


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
    geometry = _geometry(np.shape(x), np.shape(filter)[:2], pair(strides, "strides"),
                         check_padding(padding))
    if np.shape(x)[3] != np.shape(filter)[2]:
        raise ValueError(
            f"the input has {np.shape(x)[3]} channels but the filter expects "
            f"{np.shape(filter)[2]} (filter shape {np.shape(filter)})"
        )
    return geometry


def _uses_columns(filter) -> bool:
    """Return whether the convolution goes through an im2col matrix.

    It does when a window (kernel_h * kernel_w * in_channels values) is no
    larger than an output pixel (out_channels values), as in a first layer
    with few input channels: then the matrix is no larger than the output.
    Otherwise each window offset gets a matrix product of its own, with
    temporaries the size of the input and of the output. Those products
    have `in_channels` as one dimension, so OpenBLAS 0.3.31 runs them on
    one thread. That helps, because a threaded product there allocates and
    frees a 512 KiB job array per call, which costs page faults, and gains
    little.
    """
    kernel_h, kernel_w, in_channels, out_channels = np.shape(filter)
    return kernel_h * kernel_w * in_channels <= out_channels


def _conv2d_columns(x, geometry: _Geometry, dtype):
    """Return the im2col matrix: one row per output pixel, holding its window
    in (win_h, win_w, channels) order, with zeros for padding."""
    batch, channels = geometry.shape[0], geometry.shape[3]
    columns = np.zeros((batch, *geometry.output, *geometry.window, channels), dtype=dtype)
    for i, j in geometry.offsets():
        inside = geometry.inside_at_offset(i, j)
        if inside is not None:
            output_index, input_index = inside
            columns[(*output_index, i, j)] = x[input_index]
    return columns.reshape(batch * geometry.output[0] * geometry.output[1], -1)


def _offset_rows(x, geometry: _Geometry, i: int, j: int, rows):
    """Write the input elements at offset (i, j) of every window into `rows`,
    of shape (batch, out_h, out_w, in_channels), with zeros for padding, and
    return it as a matrix with one row per output pixel."""
    inside = geometry.inside_at_offset(i, j)
    if inside is None:
        rows.fill(0)
    else:
        output_index, input_index = inside
        if rows[output_index].shape != rows.shape:
            rows.fill(0)
        rows[output_index] = x[input_index]
    return rows.reshape(-1, rows.shape[3])


def _conv2d(x, filter, bias, strides, padding):
    """Return the convolution and its geometry."""
    x = np.asarray(x)
    geometry = _conv2d_geometry(x, filter, strides, padding)
    kernel = np.reshape(filter, (-1, np.shape(filter)[3]))
    dtype = np.result_type(x, kernel)
    if _uses_columns(filter):
        y = _conv2d_columns(x, geometry, dtype) @ kernel
    else:
        rows = np.empty((geometry.shape[0], *geometry.output, geometry.shape[3]), dtype=dtype)
        y = product = None
        for i, j in geometry.offsets():
            offset_rows = _offset_rows(x, geometry, i, j, rows)
            if y is None:
                y = offset_rows @ filter[i, j]
                product = np.empty_like(y)
            else:
                y += np.matmul(offset_rows, filter[i, j], out=product)
    if bias is not None:
        y += bias
    return y.reshape(geometry.shape[0], *geometry.output, -1), geometry


def conv2d(x, filter, strides=(1, 1), padding="valid", bias=None):
    """Return the 2-D cross-correlation of NHWC `x` with an HWIO `filter`.

    The result has shape (batch, out_h, out_w, out_channels). Like
    `tf.nn.conv2d`, the filter is not flipped. `bias`, of shape
    (out_channels,), is added to every output pixel when given; adding it
    here saves an array the size of the output. An empty batch gives an
    empty result.
    """
    _check_filter_sizes(filter)
    if np.shape(x)[:1] == (0,):
        return _empty_batch_conv2d(x, filter, strides, padding, bias)
    return _conv2d(x, filter, bias, strides, padding)[0]


def _conv2d_filter_bar(x, filter, y_bar_rows, geometry):
    """Return the filter's cotangent: the im2col matrix transposed times y_bar."""
    kernel = np.reshape(filter, (-1, np.shape(filter)[3]))
    dtype = np.result_type(x, kernel)
    if _uses_columns(filter):
        columns = _conv2d_columns(x, geometry, dtype)
        return (columns.T @ y_bar_rows).reshape(np.shape(filter))
    rows = np.empty((geometry.shape[0], *geometry.output, geometry.shape[3]), dtype=dtype)
    filter_bar = np.empty(np.shape(filter), dtype=np.result_type(dtype, y_bar_rows))
    for i, j in geometry.offsets():
        offset_rows = _offset_rows(x, geometry, i, j, rows)
        np.matmul(offset_rows.T, y_bar_rows, out=filter_bar[i, j])
    return filter_bar


def _conv2d_x_bar(x, filter, y_bar_rows, geometry):
    """Return the input's cotangent: y_bar times the filter, added back into
    the input one window offset at a time."""
    batch, channels = geometry.shape[0], geometry.shape[3]
    x_bar = np.zeros(geometry.shape, dtype=_cotangent_dtype(x, y_bar_rows))
    # The filter's transpose is copied to C order because OpenBLAS 0.3.31
    # runs a product on two threads at a smaller size when its second
    # operand is a transposed view. With a breakpoint on `exec_blas`,
    # 1024x32 by a 32x16 view ran on two threads, and 1024x32 by a
    # C-ordered 32x16 matrix on one.
    if _uses_columns(filter):
        kernel = np.reshape(filter, (-1, np.shape(filter)[3]))
        windows_bar = (y_bar_rows @ np.ascontiguousarray(kernel.T)).reshape(
            batch, *geometry.output, *geometry.window, channels)
    else:
        filter_t = np.ascontiguousarray(np.swapaxes(filter, 2, 3))
        offset_bar = np.empty((batch, *geometry.output, channels),
                              dtype=np.result_type(y_bar_rows, filter))
    for i, j in geometry.offsets():
        inside = geometry.inside_at_offset(i, j)
        if inside is None:
            continue
        output_index, input_index = inside
        if _uses_columns(filter):
            x_bar[input_index] += windows_bar[(*output_index, i, j)]
        else:
            np.matmul(y_bar_rows, filter_t[i, j], out=offset_bar.reshape(-1, channels))
            x_bar[input_index] += offset_bar[output_index]
    return x_bar


@derivative_of(conv2d, wrt=("x", "filter", "bias"))
def _conv2d_vjp(x, filter, strides=(1, 1), padding="valid", bias=None, *,
                wrt=("x", "filter", "bias")):
    x = np.asarray(x)
    _check_filter_sizes(filter)
    if x.shape[:1] == (0,):
        return _empty_batch_conv2d_vjp(x, filter, strides, padding, bias, wrt)
    y, geometry = _conv2d(x, filter, bias, strides, padding)

    def conv2d_pullback(y_bar):
        # Nothing of the forward pass is kept but `x`, which callers keep
        # anyway: the pullback gathers the windows again.
        y_bar_rows = np.reshape(y_bar, (-1, np.shape(y_bar)[3]))
        x_bar = filter_bar = bias_bar = None
        if "filter" in wrt:
            filter_bar = _conv2d_filter_bar(x, filter, y_bar_rows, geometry)
            filter_bar = filter_bar.astype(_cotangent_dtype(filter, y_bar), copy=False)
        if bias is not None and "bias" in wrt:
            # A matrix-vector product sums the rows several times faster
            # than NumPy's reduction along the first axis.
            ones = np.ones(y_bar_rows.shape[0], dtype=y_bar_rows.dtype)
            bias_bar = (ones @ y_bar_rows).astype(_cotangent_dtype(bias, y_bar), copy=False)
        if "x" in wrt:
            x_bar = _conv2d_x_bar(x, filter, y_bar_rows, geometry)
        return x_bar, filter_bar, bias_bar

    return y, conv2d_pullback


# Pooling.


def _pool_geometry(x, pool_size, strides, padding) -> _Geometry:
    pool_size = pair(pool_size, "pool_size")
    strides = pool_size if strides is None else pair(strides, "strides")
    return _geometry(np.shape(x), pool_size, strides, check_padding(padding))


def _max_pool(x, geometry: _Geometry, with_winners: bool = False):
    """Return the window maxima and, if `with_winners`, the offset number of
    each window's maximum, in row-major window order.

    A NaN in a window makes its maximum NaN, as with `np.max`, and its last
    NaN the winner. Otherwise the winner is the first element equal to the
    maximum.
    """
    dtype = np.result_type(x)
    lowest = -np.inf if dtype.kind == "f" else np.iinfo(dtype).min
    padded = geometry.pad(x, lowest)
    maxima = winners = None
    for offset, (i, j) in enumerate(geometry.offsets()):
        candidate = padded[geometry.at_offset(i, j)]
        if maxima is None:
            maxima = candidate.copy()
            if with_winners:
                offset_type = np.min_scalar_type(geometry.window[0] * geometry.window[1] - 1)
                winners = np.zeros(maxima.shape, dtype=offset_type)
                greater = np.empty(maxima.shape, dtype=bool)
                update = np.empty_like(winners)
            continue
        if with_winners:
            # The running maximum rises only at a strictly greater element,
            # and offsets grow, so the largest offset at such a rise is the
            # first element equal to the final maximum. A maximum of the
            # offsets costs two fast ufuncs, where `np.copyto(where=...)`
            # took several times as long.
            np.greater(candidate, maxima, out=greater)
            np.multiply(greater, offset_type.type(offset), out=update)
            np.maximum(winners, update, out=winners)
        np.maximum(maxima, candidate, out=maxima)
    if with_winners and dtype.kind == "f" and np.isnan(maxima).any():
        for offset, (i, j) in enumerate(geometry.offsets()):
            winners[np.isnan(padded[geometry.at_offset(i, j)])] = offset
    return maxima, winners


def max_pool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Return the maximum of each `pool_size` window of NHWC `x`.

    `strides` defaults to `pool_size`. With padding "same" the padding never
    wins a maximum. `x` may be floating, integer or bool, and the result
    keeps its dtype.
    """
    _check_dtype_kind(x, "max_pool2d", "biuf", "real numbers (bool, integer or floating)")
    if np.asarray(x).dtype == np.bool_:
        # The maximum of bools is their logical or, the same as that of 0s and 1s.
        return max_pool2d(np.asarray(x, np.uint8), pool_size, strides, padding).astype(bool)
    geometry = _pool_geometry(x, pool_size, strides, padding)
    return _max_pool(x, geometry)[0]


@derivative_of(max_pool2d, wrt="x")
def _max_pool2d_vjp(x, pool_size=(2, 2), strides=None, padding="valid"):
    _check_dtype_kind(x, "max_pool2d", "biuf", "real numbers (bool, integer or floating)")
    geometry = _pool_geometry(x, pool_size, strides, padding)
    # The pullback keeps the small array of winners, not the input.
    y, winners = _max_pool(x, geometry, with_winners=True)
    x_dtype = np.result_type(x)

    def max_pool2d_pullback(y_bar):
        padded_bar = np.zeros(geometry.padded_shape, dtype=_cotangent_dtype(x_dtype, y_bar))
        # Windows that do not overlap write each element at most once, so
        # the product goes straight into place.
        overlapping = any(s < w for s, w in zip(geometry.strides, geometry.window, strict=True))
        hit = np.empty(winners.shape, dtype=bool)
        for offset, (i, j) in enumerate(geometry.offsets()):
            np.equal(winners, offset, out=hit)
            index = geometry.at_offset(i, j)
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
    averages only its input elements, as TensorFlow does. Bool and integer
    input gives a float64 result, as `np.mean` does.
    """
    _check_dtype_kind(x, "avg_pool2d", "biufc", "numbers (bool, integer, floating or complex)")
    return _avg_pool(x, pool_size, strides, padding)[0]


@derivative_of(avg_pool2d, wrt="x")
def _avg_pool2d_vjp(x, pool_size=(2, 2), strides=None, padding="valid"):
    _check_dtype_kind(x, "avg_pool2d", "biufc", "numbers (bool, integer, floating or complex)")
    y, counts, geometry = _avg_pool(x, pool_size, strides, padding)

    def avg_pool2d_pullback(y_bar):
        share = y_bar / counts
        padded_bar = np.zeros(geometry.padded_shape, dtype=_cotangent_dtype(x, y_bar))
        for i, j in geometry.offsets():
            padded_bar[geometry.at_offset(i, j)] += share
        return geometry.unpad(padded_bar)

    return y, avg_pool2d_pullback


# Input checks and empty batches.


def _check_filter_sizes(filter) -> None:
    if np.ndim(filter) == 4 and min(np.shape(filter)) < 1:
        raise ValueError(
            "the filter must have shape (height, width, in_channels, out_channels) "
            f"with every size at least 1, got shape {np.shape(filter)}"
        )


def _check_dtype_kind(x, function: str, kinds: str, description: str) -> None:
    """Raise TypeError unless the dtype kind of `x` is one of `kinds` ("b", "i", ...)."""
    dtype = np.asarray(x).dtype
    if dtype.kind not in kinds:
        raise TypeError(
            f"{function} needs an array of {description}, got dtype {dtype}; "
            "convert it first, for example with x.astype(np.float32)"
        )


def _empty_batch_conv2d(x, filter, strides, padding, bias):
    """Return the convolution of a batch of no images: shape (0, out_h, out_w, out_channels)."""
    geometry = _conv2d_geometry(x, filter, strides, padding)
    dtype = np.result_type(np.asarray(x), np.asarray(filter))
    y = np.zeros((0, *geometry.output, np.shape(filter)[3]), dtype=dtype)
    if bias is not None:
        y += bias
    return y


def _empty_batch_conv2d_vjp(x, filter, strides, padding, bias, wrt):
    y = _empty_batch_conv2d(x, filter, strides, padding, bias)

    def conv2d_pullback(y_bar):
        # Every cotangent is a sum over the images, so for no images it is zero.
        x_bar = filter_bar = bias_bar = None
        if "x" in wrt:
            x_bar = np.zeros(x.shape, dtype=_cotangent_dtype(x, y_bar))
        if "filter" in wrt:
            filter_bar = np.zeros(np.shape(filter), dtype=_cotangent_dtype(filter, y_bar))
        if bias is not None and "bias" in wrt:
            bias_bar = np.zeros(np.shape(bias), dtype=_cotangent_dtype(bias, y_bar))
        return x_bar, filter_bar, bias_bar

    return y, conv2d_pullback
