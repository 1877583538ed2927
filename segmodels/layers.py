"""Custom layers, registered so saved models load without ``custom_objects``."""

from __future__ import annotations

import keras
from keras import ops

_PACKAGE = "segmodels"


class StrideError(ValueError):
    """Input height/width is not a multiple of the model's stride."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StrideCheck(keras.layers.Layer):
    """Identity that fails clearly when H or W is not a multiple of the model's stride.

    Checks the static shape (always known eagerly and under JAX/XLA tracing); when a
    traced graph leaves H/W unknown it passes through, and callers should use
    ``segmodels.check_input_size`` up front.
    """

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        for size in (height, width):
            if isinstance(size, int) and size % self.stride:
                raise StrideError(
                    f"input height and width must be multiples of {self.stride} for this "
                    f"model, got {height}x{width}; pad or crop the input")
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BroadcastLike(keras.layers.Layer):
    """Broadcast a (N, 1, 1, C) tensor over the spatial size of a reference (N, H, W, *).

    Used for the image-pooling branch of ASPP: bilinear upsampling of a 1x1 map is a
    broadcast, and this works for input sizes only known at run time.
    """

    def call(self, inputs):
        pooled, reference = inputs
        shape = ops.shape(reference)
        target = (shape[0], shape[1], shape[2], pooled.shape[-1])
        return ops.broadcast_to(pooled, target)

    def compute_output_shape(self, input_shapes):
        pooled, reference = input_shapes
        return (*reference[:3], pooled[-1])
