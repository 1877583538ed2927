"""The classic smooth-blending algorithm (Chevalier, 2017, "Smoothly-Blend-Image-Patches",
smooth_tiled_predictions.py), re-implemented faithfully as the reference the windowed
predictor is compared against. Square images only, like the original; it builds every
patch of the padded scene in memory at once, which is exactly what serving/ avoids."""

from __future__ import annotations

import numpy as np


def _triang(n):
    # scipy.signal.triang
    half = np.arange(1, (n + 1) // 2 + 1)
    if n % 2 == 0:
        w = (2 * half - 1.0) / n
        return np.r_[w, w[::-1]]
    w = 2 * half / (n + 1.0)
    return np.r_[w, w[-2::-1]]


def _spline_window(window_size, power=2):
    intersection = int(window_size / 4)
    wind_outer = (abs(2 * (_triang(window_size))) ** power) / 2
    wind_outer[intersection:-intersection] = 0
    wind_inner = 1 - (abs(2 * (_triang(window_size) - 1)) ** power) / 2
    wind_inner[:intersection] = 0
    wind_inner[-intersection:] = 0
    wind = wind_inner + wind_outer
    wind = wind / np.average(wind)
    return wind


def _window_2d(window_size, power=2):
    wind = _spline_window(window_size, power)
    wind = np.expand_dims(np.expand_dims(wind, 1), 1)
    return wind * wind.transpose(1, 0, 2)


def _pad_img(img, window_size, subdivisions):
    aug = int(round(window_size * (1 - 1.0 / subdivisions)))
    return np.pad(img, pad_width=((aug, aug), (aug, aug), (0, 0)), mode="reflect")


def _unpad_img(padded_img, window_size, subdivisions):
    aug = int(round(window_size * (1 - 1.0 / subdivisions)))
    return padded_img[aug:-aug, aug:-aug, :]


def _rotate_mirror_do(im):
    mirrs = [np.array(im)]
    mirrs.append(np.rot90(np.array(im), axes=(0, 1), k=1))
    mirrs.append(np.rot90(np.array(im), axes=(0, 1), k=2))
    mirrs.append(np.rot90(np.array(im), axes=(0, 1), k=3))
    im = np.array(im)[:, ::-1]
    mirrs.append(np.array(im))
    mirrs.append(np.rot90(np.array(im), axes=(0, 1), k=1))
    mirrs.append(np.rot90(np.array(im), axes=(0, 1), k=2))
    mirrs.append(np.rot90(np.array(im), axes=(0, 1), k=3))
    return mirrs


def _rotate_mirror_undo(im_mirrs):
    origs = [np.array(im_mirrs[0])]
    origs.append(np.rot90(np.array(im_mirrs[1]), axes=(0, 1), k=3))
    origs.append(np.rot90(np.array(im_mirrs[2]), axes=(0, 1), k=2))
    origs.append(np.rot90(np.array(im_mirrs[3]), axes=(0, 1), k=1))
    origs.append(np.array(im_mirrs[4])[:, ::-1])
    origs.append(np.rot90(np.array(im_mirrs[5]), axes=(0, 1), k=3)[:, ::-1])
    origs.append(np.rot90(np.array(im_mirrs[6]), axes=(0, 1), k=2)[:, ::-1])
    origs.append(np.rot90(np.array(im_mirrs[7]), axes=(0, 1), k=1)[:, ::-1])
    return np.mean(origs, axis=0)


def _windowed_subdivs(padded_img, window_size, subdivisions, nb_classes, pred_func):
    window = _window_2d(window_size=window_size, power=2)
    step = int(window_size / subdivisions)
    padx_len, pady_len = padded_img.shape[0], padded_img.shape[1]
    subdivs = []
    for i in range(0, padx_len - window_size + 1, step):
        subdivs.append([])
        for j in range(0, pady_len - window_size + 1, step):
            subdivs[-1].append(padded_img[i:i + window_size, j:j + window_size, :])
    subdivs = np.array(subdivs)
    a, b, c, d, e = subdivs.shape
    subdivs = subdivs.reshape(a * b, c, d, e)
    subdivs = pred_func(subdivs)
    subdivs = np.array([patch * window for patch in subdivs])
    return subdivs.reshape(a, b, c, d, nb_classes)


def _recreate_from_subdivs(subdivs, window_size, subdivisions, padded_out_shape):
    step = int(window_size / subdivisions)
    padx_len, pady_len = padded_out_shape[0], padded_out_shape[1]
    y = np.zeros(padded_out_shape)
    for a, i in enumerate(range(0, padx_len - window_size + 1, step)):
        for b, j in enumerate(range(0, pady_len - window_size + 1, step)):
            y[i:i + window_size, j:j + window_size] += subdivs[a, b]
    return y / (subdivisions ** 2)


def predict_img_with_smooth_windowing(input_img, window_size, subdivisions, nb_classes,
                                      pred_func):
    pad = _pad_img(input_img, window_size, subdivisions)
    res = []
    for one in _rotate_mirror_do(pad):
        sd = _windowed_subdivs(one, window_size, subdivisions, nb_classes, pred_func)
        res.append(_recreate_from_subdivs(sd, window_size, subdivisions,
                                          padded_out_shape=list(one.shape[:-1]) + [nb_classes]))
    prd = _unpad_img(_rotate_mirror_undo(res), window_size, subdivisions)
    return prd[:input_img.shape[0], :input_img.shape[1], :]
