"""Pix2Pix (Isola et al., 2017) for segmentation: a U-Net generator that outputs per-class
probabilities and a PatchGAN discriminator that judges (image, label map) pairs.

``Pix2Pix`` is a ``keras.Model`` whose ``call`` is the generator, so ``predict`` and
serving see an ordinary segmentation model, and whose training is adversarial + the
compiled supervised loss (cross-entropy by default), through the ordinary ``fit``.

Both players train in ONE backward pass, written with ``keras.ops`` only (no
backend-specific ``train_step``): the total is ``L_G + L_D`` where
* ``L_D`` sees the generator output through ``stop_gradient``, so it moves only D;
* the generator's adversarial term runs D via ``stateless_call`` on ``stop_gradient`` of
  D's weights, so it moves only G (gradients still flow through D to G's output).
One optimizer updates both (the paper uses Adam(2e-4, beta_1=0.5) for both).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from segmodels.layers import StrideCheck
from segmodels.losses import CrossEntropyLoss

_PACKAGE = "segmodels"


def pix2pix_stride(depth: int = 5, **_) -> int:
    return 2**depth


def build_generator(num_classes: int, in_channels: int, depth: int = 5, filters: int = 32,
                    dropout: float = 0.5) -> keras.Model:
    """Pix2Pix U-Net: 4x4 stride-2 convs down ``depth`` times, transposed convs back up,
    dropout on the three deepest decoder blocks (the paper's noise source)."""
    if not 2 <= depth <= 8:
        raise ValueError(f"pix2pix depth must be in 2..8, got {depth}")
    inputs = keras.Input((None, None, in_channels), name="image")
    x = StrideCheck(2**depth, name="stride_check")(inputs)
    skips = []
    for level in range(depth):
        f = filters * min(2**level, 8)
        x = layers.Conv2D(f, 4, strides=2, padding="same", use_bias=level == 0,
                          name=f"down{level}_conv")(x)
        if level:
            x = layers.BatchNormalization(name=f"down{level}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"down{level}_lrelu")(x)
        skips.append(x)
    for level in reversed(range(depth - 1)):
        f = filters * min(2**level, 8)
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False,
                                   name=f"up{level}_conv")(x)
        x = layers.BatchNormalization(name=f"up{level}_bn")(x)
        if dropout and level >= depth - 4:
            x = layers.Dropout(dropout, name=f"up{level}_drop")(x)
        x = layers.Activation("relu", name=f"up{level}_relu")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
    logits = layers.Conv2DTranspose(num_classes, 4, strides=2, padding="same", name="logits")(x)
    probs = layers.Activation("softmax", dtype="float32", name="probs")(logits)
    return keras.Model(inputs, probs, name="generator")


def build_discriminator(num_classes: int, in_channels: int, filters: int = 32,
                        layers_count: int = 3) -> keras.Model:
    """PatchGAN: logits for overlapping patches of the (image, class map) pair; input H, W
    multiples of 2**layers_count give an (H, W) / 2**layers_count logit map."""
    image = keras.Input((None, None, in_channels), name="image")
    label_map = keras.Input((None, None, num_classes), name="label_map")
    x = layers.Concatenate(name="pair")([image, label_map])
    for i in range(layers_count):
        x = layers.Conv2D(filters * min(2**i, 8), 4, strides=2, padding="same",
                          use_bias=i == 0, name=f"d{i}_conv")(x)
        if i:
            x = layers.BatchNormalization(name=f"d{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"d{i}_lrelu")(x)
    x = layers.Conv2D(filters * min(2**layers_count, 8), 4, padding="same", use_bias=False,
                      name="d_last_conv")(x)
    x = layers.BatchNormalization(name="d_last_bn")(x)
    x = layers.LeakyReLU(0.2, name="d_last_lrelu")(x)
    patch_logits = layers.Conv2D(1, 4, padding="same", dtype="float32", name="patch_logits")(x)
    return keras.Model([image, label_map], patch_logits, name="discriminator")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Pix2Pix(keras.Model):
    """Conditional GAN for segmentation; ``call`` returns the generator's probabilities.

    Compile as any model; without ``loss`` the supervised term is cross-entropy with
    ``ignore_index``. Validation/evaluation loss is the supervised term only, so it
    compares with the other architectures'.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model,
                 adversarial_weight: float = 0.05, ignore_index: int | None = 255, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.adversarial_weight = float(adversarial_weight)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.num_classes = generator.output_shape[-1]
        self.built = True  # both players are functional models, built at construction

    @property
    def input_shape(self) -> tuple:
        """(None, None, None, bands), like the functional architectures'."""
        return self.generator.input_shape

    @property
    def output_shape(self) -> tuple:
        return self.generator.output_shape

    def call(self, inputs, training=None):
        return self.generator(inputs, training=training)

    def build(self, input_shape=None):
        self.built = True

    def _label_map(self, y):
        """Integer labels -> one-hot map with ignored pixels all-zero, plus the valid mask."""
        y = ops.convert_to_tensor(y)
        if len(y.shape) == 4:
            y = ops.squeeze(y, axis=-1)
        y = ops.cast(y, "int32")
        valid = ops.ones_like(y, dtype="float32")
        if self.ignore_index is not None:
            valid = ops.cast(ops.not_equal(y, self.ignore_index), "float32")
        one_hot = ops.one_hot(ops.where(valid > 0, y, 0), self.num_classes, dtype="float32")
        return one_hot * valid[..., None], valid[..., None]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if getattr(self, "loss", None) is None and y is not None:
            # compiled without a loss: cross-entropy with our ignore index
            supervised = CrossEntropyLoss(ignore_index=self.ignore_index)(y, y_pred)
        else:
            supervised = super().compute_loss(x=x, y=y, y_pred=y_pred,
                                              sample_weight=sample_weight, training=training)
        if not training or y is None or not self.adversarial_weight:
            return supervised
        real_map, valid = self._label_map(y)
        # ignored pixels are blanked in both maps so D cannot tell real from fake by them
        fake_map = ops.cast(y_pred, "float32") * valid
        real_logits = self.discriminator([x, real_map], training=True)
        fake_logits = self.discriminator([x, ops.stop_gradient(fake_map)], training=True)
        d_loss = 0.5 * (
            ops.mean(ops.binary_crossentropy(ops.ones_like(real_logits), real_logits,
                                             from_logits=True))
            + ops.mean(ops.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits,
                                               from_logits=True)))
        frozen = [ops.stop_gradient(v) for v in self.discriminator.trainable_variables]
        g_logits, _ = self.discriminator.stateless_call(
            frozen, [v.value for v in self.discriminator.non_trainable_variables],
            [x, fake_map], training=True)
        g_adversarial = ops.mean(ops.binary_crossentropy(ops.ones_like(g_logits), g_logits,
                                                         from_logits=True))
        return supervised + self.adversarial_weight * g_adversarial + d_loss

    def get_config(self) -> dict:
        return {
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "adversarial_weight": self.adversarial_weight,
            "ignore_index": self.ignore_index,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> Pix2Pix:
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)


def build_pix2pix(num_classes: int, in_channels: int, depth: int = 5, filters: int = 32,
                  dropout: float = 0.5, discriminator_filters: int = 32,
                  discriminator_layers: int = 3, adversarial_weight: float = 0.05,
                  ignore_index: int | None = 255) -> Pix2Pix:
    """H and W must be multiples of 2**depth (and of 2**discriminator_layers)."""
    generator = build_generator(num_classes, in_channels, depth, filters, dropout)
    discriminator = build_discriminator(num_classes, in_channels, discriminator_filters,
                                        discriminator_layers)
    return Pix2Pix(generator, discriminator, adversarial_weight, ignore_index, name="pix2pix")
