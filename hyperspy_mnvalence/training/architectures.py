"""Keras 3 architectures for Mn valence classification.

``fcn`` is the fully convolutional network of Chatzidakis & Botton (2019); ``dense``
and ``conv_dense`` are that paper's comparison networks (fixed length 300); ``fcn_wide``
is a wider fully convolutional variant (global average pooling, so translation
invariant and length-agnostic). TensorFlow/Keras are imported inside the functions only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

__all__ = ["ARCHITECTURES", "build_model", "feature_model"]

#: Batch-norm momentum: faster than the Keras default (0.99) so the moving statistics
#: follow the quickly changing activations of these small networks.
BN_MOMENTUM = 0.9

#: name -> (description, variable input length?)
ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "fcn": ("Chatzidakis & Botton 2019 fully convolutional network (~650 weights)", True),
    "fcn_wide": ("wider fully convolutional network, global average pooling", True),
    "fcn_lite": ("fully convolutional network widening with depth (4-64 filters), for speed", True),
    "fcn_small": ("fully convolutional network, half the filters of fcn_wide", True),
    "fcn_big": ("fully convolutional network, twice the filters of fcn_wide (~4x compute)", True),
    "dense": ("Chatzidakis & Botton 2019 dense network, 2x32 hidden units", False),
    "conv_dense": ("Chatzidakis & Botton 2019 convolutional + dense network", False),
}


def _fcn(layers, keras, filters, kernels, dropout, name):
    inp = keras.Input(shape=(None, 1), name="spectra")
    x = inp
    for i, (f, k) in enumerate(zip(filters, kernels, strict=True)):
        x = layers.Conv1D(f, k, padding="valid", activation="relu", name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
        x = layers.AveragePooling1D(2, name=f"pool{i}")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Conv1D(3, 1, name="conv_out")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn_out")(x)
    x = layers.GlobalAveragePooling1D(name="features")(x)
    out = layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inp, out, name=name)


def build_model(arch: str, n_channels: int = 300) -> keras.Model:
    """Build an (uncompiled) Keras model.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    n_channels : int
        Input length for the fixed-length networks.

    Returns
    -------
    keras.Model
        Input ``(batch, length, 1)``, output softmax ``(batch, 3)``.
    """
    import keras
    from keras import layers

    if arch == "fcn":
        return _fcn(layers, keras, (2, 2, 4, 8, 12), (9, 7, 7, 5, 3), 0.8, "fcn")
    if arch == "fcn_wide":
        return _fcn(layers, keras, (16, 32, 32, 64, 64), (9, 7, 7, 5, 3), 0.3, "fcn_wide")
    if arch == "fcn_lite":
        return _fcn(layers, keras, (4, 8, 16, 32, 64), (9, 7, 7, 5, 3), 0.3, "fcn_lite")
    if arch == "fcn_big":
        return _fcn(layers, keras, (32, 64, 64, 128, 128), (9, 7, 7, 5, 3), 0.3, "fcn_big")
    if arch == "fcn_small":
        return _fcn(layers, keras, (8, 16, 16, 32, 32), (9, 7, 7, 5, 3), 0.3, "fcn_small")
    if arch == "dense":
        inp = keras.Input(shape=(n_channels, 1), name="spectra")
        x = layers.Flatten()(inp)
        for i in range(2):
            x = layers.Dense(32, name=f"dense{i}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
            x = layers.Activation("relu")(x)
            x = layers.Dropout(0.5)(x)
        out = layers.Dense(3, activation="softmax", name="probabilities")(x)
        return keras.Model(inp, out, name="dense")
    if arch == "conv_dense":
        inp = keras.Input(shape=(n_channels, 1), name="spectra")
        x = inp
        for i, (f, k) in enumerate(zip((2, 2, 4, 8), (9, 7, 7, 5), strict=True)):
            x = layers.Conv1D(f, k, padding="valid", activation="relu", name=f"conv{i}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
            x = layers.AveragePooling1D(2, name=f"pool{i}")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(32, activation="relu", name="dense0")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.Dropout(0.5)(x)
        out = layers.Dense(3, activation="softmax", name="probabilities")(x)
        return keras.Model(inp, out, name="conv_dense")
    raise ValueError(f"Unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")


def feature_model(model: keras.Model) -> keras.Model:
    """Sub-model that returns the learned features before the classifier.

    The global-average-pooled logits for the fully convolutional networks (their last
    hidden representation is 3-wide by design: take the pooled last convolution block
    instead), the last hidden layer for the dense networks.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    keras.Model
    """
    import keras

    names = [layer.name for layer in model.layers]
    if "pool4" in names:  # FCNs: global average of the last conv block
        x = keras.layers.GlobalAveragePooling1D()(model.get_layer("pool4").output)
        return keras.Model(model.inputs, x)
    hidden = [layer for layer in model.layers if layer.name.startswith("dense")]
    return keras.Model(model.inputs, hidden[-1].output)
