"""U-Net decoder on a pretrained ``keras.applications`` encoder (ResNet-50, MobileNetV2,
EfficientNetV2-B0; see ``segmodels.encoders``), as in segmentation_models: the encoder's
features at strides 2 .. 2**encoder_depth are the skips, each decoder level upsamples x2,
joins its skip and applies two 3x3 conv-BN-ReLU with ``decoder_filters * 2**level`` filters,
and a last level without skip returns to full resolution. H and W must be multiples of
2**encoder_depth.

A pretrained encoder and a random decoder: the decoder's first, large gradients can wreck
the pretrained features, so training may keep the encoder's gradient cut for a few epochs
(``EncoderWarmup`` opens the ``EncoderGate`` after them) -- backend-neutral, no recompiling,
and the encoder's batch-norm statistics adapt to the new imagery meanwhile.
``freeze_encoder=True`` freezes it for good (batch norm in inference mode).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from segmodels.encoders import encoder_features
from segmodels.layers import StrideCheck
from segmodels.unet import conv_block, decoder_upsample, softmax_head

_PACKAGE = "segmodels"
DEFAULT_ENCODER = "efficientnetv2b0"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EncoderGate(keras.layers.Layer):
    """Identity on the encoder's features; while ``open`` is 0 no gradient flows back
    through it, so the encoder does not learn (its optimizer update is zero)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.open = self.add_weight(shape=(), initializer="ones", trainable=False, name="open")

    def call(self, inputs):
        gate = ops.cast(self.open, inputs.dtype)
        return inputs * gate + ops.stop_gradient(inputs) * (1 - gate)

    def compute_output_shape(self, input_shape):
        return input_shape

    # The switch is training state, not model state: it is not saved, and a loaded model
    # (e.g. the best epoch's, saved during warm-up) always has its gate open.
    def save_own_variables(self, store) -> None:
        pass

    def load_own_variables(self, store) -> None:
        self.open.assign(1.0)


class EncoderWarmup(keras.callbacks.Callback):
    """Keeps every ``EncoderGate`` of the model closed for the first ``epochs`` epochs, open
    afterwards (decided per epoch, so a resumed run does the same); models without a gate
    are left alone."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = int(epochs)

    def _set(self, value: float) -> None:
        for layer in self.model.layers:
            if isinstance(layer, EncoderGate):
                layer.open.assign(value)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._set(1.0 if epoch >= self.epochs else 0.0)

    def on_train_end(self, logs=None) -> None:
        self._set(1.0)


def encoder_unet_stride(encoder_depth: int = 5, **_) -> int:
    return 2**encoder_depth


def build_encoder_unet(num_classes: int, in_channels: int, encoder: str = DEFAULT_ENCODER,
                       encoder_weights: str | None = None, encoder_depth: int = 5,
                       encoder_width: float = 1.0, decoder_filters: int = 16,
                       upsampling: str = "bilinear", dropout: float = 0.0,
                       freeze_encoder: bool = False) -> keras.Model:
    """U-Net on ``encoder`` (see the module docstring); ``encoder_width`` is MobileNetV2's
    alpha; ``dropout`` acts on the deepest features."""
    if not 2 <= encoder_depth <= 5:
        raise ValueError(f"encoder_depth must be in 2..5 (stride 4..32), got {encoder_depth}")
    if decoder_filters < 1 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"decoder_filters must be >= 1 and dropout in [0, 1), got "
                         f"{decoder_filters}, {dropout}")
    if upsampling not in ("transpose", "bilinear", "nearest"):
        raise ValueError(f"upsampling must be 'transpose', 'bilinear' or 'nearest', "
                         f"got {upsampling!r}")
    backbone = encoder_features(encoder, in_channels, encoder_weights, encoder_depth,
                                encoder_width)
    backbone.trainable = not freeze_encoder
    inputs = keras.Input((None, None, in_channels), name="image")
    checked = StrideCheck(2**encoder_depth, name="stride_check")(inputs)
    gate = EncoderGate(name="encoder_gate")  # one layer, one switch, for every feature
    features = [gate(f) for f in backbone(checked)]
    x = features[-1]
    if dropout:
        x = layers.Dropout(dropout, name="deepest_drop")(x)
    for level in reversed(range(encoder_depth)):
        filters = decoder_filters * 2**level
        x = decoder_upsample(x, filters, upsampling, f"up{level}")
        if level:
            x = layers.Concatenate(name=f"skip{level}")([x, features[level - 1]])
        x = conv_block(x, filters, 3, True, 0.0, f"dec{level}")
    return keras.Model(inputs, softmax_head(x, num_classes), name="encoder_unet")
