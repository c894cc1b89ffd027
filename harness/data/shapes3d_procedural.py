"""A ray-cast twin of Shapes3D: its factor grid, rendered on the fly, no download.

Floor hue 10, wall hue 10, object hue 10, scale 8 (0.75..1.25), shape 4 (cube, cylinder,
sphere, capsule), orientation 15 (camera azimuth −30°..30° around the object); 64×64 RGB.

Only 8 × 4 × 15 = 480 geometries exist, so each is ray-cast once (floor plane, back wall,
the object, a directional light with Lambert shading and the object's shadow) into a
surface label (floor, wall, object) and an 8-bit shade per pixel. A batch then only
colours those maps: ``(shade · rgb + 127) // 255`` in integers, looked up from a table. Integer colouring makes
batches identical on every machine; the one-off geometry uses float64 with pixel-centre
rays and rounds each shade to 8 bits.
"""
from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

from gmgbench.harness.data.base import GroundTruthData

__all__ = ["Shapes3DProcedural", "geometry_maps"]

_SIZE = 64
_SCALES = np.linspace(0.75, 1.25, 8)
_AZIMUTHS = np.deg2rad(np.linspace(-30.0, 30.0, 15))
_HUES = np.arange(10) / 10.0
_WALL_Z, _CAM_R, _CAM_H, _LOOK_Y, _FOV = 3.0, 6.0, 2.4, 0.6, np.deg2rad(42.0)
_LIGHT = np.array([-0.45, 1.0, -0.7]) / np.linalg.norm([-0.45, 1.0, -0.7])
_AMBIENT = 0.35
_INF = np.inf


def _camera_rays(azimuth: float) -> tuple[np.ndarray, np.ndarray]:
    origin = np.array([_CAM_R * np.sin(azimuth), _CAM_H, -_CAM_R * np.cos(azimuth)])
    fwd = np.array([0.0, _LOOK_Y, 0.0]) - origin
    fwd /= np.linalg.norm(fwd)
    right = np.cross([0.0, 1.0, 0.0], fwd)
    right /= np.linalg.norm(right)
    up = np.cross(fwd, right)
    c = (np.arange(_SIZE) + 0.5) / (_SIZE / 2) - 1.0
    half = np.tan(_FOV / 2)
    u, v = np.meshgrid(c * half, -c * half)  # columns go right, rows go down
    d = fwd + u[..., None] * right + v[..., None] * up
    d = d.reshape(-1, 3)
    return np.broadcast_to(origin, d.shape), d / np.linalg.norm(d, axis=1, keepdims=True)


def _hit_box(o, d, a):
    lo, hi = np.array([-a, 0.0, -a]), np.array([a, 2 * a, a])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / d, (hi - o) / d
    tmin = np.nanmax(np.minimum(t1, t2), axis=1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=1)
    t = np.where((tmax >= tmin) & (tmin > 1e-6), tmin, _INF)
    p = o + t[:, None] * d
    q = (p - [0.0, a, 0.0]) / a
    axis = np.argmax(np.abs(q), axis=1)
    n = np.zeros_like(p)
    n[np.arange(len(p)), axis] = np.sign(q[np.arange(len(p)), axis])
    return t, n


def _hit_vertical_cylinder(o, d, r, y0, y1):
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = 2 * (o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2])
    c = o[:, 0] ** 2 + o[:, 2] ** 2 - r * r
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    y = o[:, 1] + t * d[:, 1]
    ok = (disc >= 0) & (t > 1e-6) & (y >= y0) & (y <= y1)
    t = np.where(ok, t, _INF)
    p = o + np.where(np.isfinite(t), t, 0)[:, None] * d
    n = np.stack([p[:, 0] / r, np.zeros(len(p)), p[:, 2] / r], axis=1)
    return t, n


def _hit_sphere(o, d, centre, r):
    oc = o - centre
    b = np.sum(oc * d, axis=1)
    c = np.sum(oc * oc, axis=1) - r * r
    disc = b * b - c
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(disc)
    t = np.where((disc >= 0) & (t > 1e-6), t, _INF)
    p = o + np.where(np.isfinite(t), t, 0)[:, None] * d
    return t, (p - centre) / r


def _hit_disc_top(o, d, r, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (y - o[:, 1]) / d[:, 1]
    p = o + np.where(np.isfinite(t), t, 0)[:, None] * d
    ok = (t > 1e-6) & (p[:, 0] ** 2 + p[:, 2] ** 2 <= r * r)
    n = np.zeros_like(p)
    n[:, 1] = 1.0
    return np.where(ok, t, _INF), n


def _closest(*hits):
    t = np.stack([h[0] for h in hits])
    k = np.argmin(t, axis=0)
    idx = np.arange(t.shape[1])
    n = np.stack([h[1] for h in hits])[k, idx]
    return t[k, idx], n


def _hit_object(o, d, shape: int, a: float):
    if shape == 0:
        return _hit_box(o, d, a)
    if shape == 1:
        return _closest(_hit_vertical_cylinder(o, d, a, 0.0, 2 * a), _hit_disc_top(o, d, a, 2 * a))
    if shape == 2:
        return _hit_sphere(o, d, np.array([0.0, a, 0.0]), a)
    r = 0.62 * a  # capsule: a vertical cylinder with hemispherical ends, total height 2a
    return _closest(_hit_vertical_cylinder(o, d, r, r, 2 * a - r),
                    _hit_sphere(o, d, np.array([0.0, r, 0.0]), r),
                    _hit_sphere(o, d, np.array([0.0, 2 * a - r, 0.0]), r))


@lru_cache(maxsize=1)
def geometry_maps() -> tuple[np.ndarray, np.ndarray]:
    """``labels`` uint8 [480, 4096] (0 floor, 1 wall, 2 object) and ``shades`` uint16 [480, 4096] in 0..255.

    Geometry index is ``(scale * 4 + shape) * 15 + orientation``.
    """
    labels = np.zeros((8, 4, 15, _SIZE * _SIZE), dtype=np.uint8)
    shades = np.zeros((8, 4, 15, _SIZE * _SIZE), dtype=np.uint16)
    for j, az in enumerate(_AZIMUTHS):
        o, d = _camera_rays(az)
        with np.errstate(divide="ignore"):
            t_floor = np.where(d[:, 1] < 0, -o[:, 1] / d[:, 1], _INF)
            t_wall = np.where(d[:, 2] > 0, (_WALL_Z - o[:, 2]) / d[:, 2], _INF)
        for i, scale in enumerate(_SCALES):
            a = 0.9 * scale
            for shape in range(4):
                t_obj, n_obj = _hit_object(o, d, shape, a)
                room = np.where(t_floor < t_wall, 0, 1)
                t_room = np.minimum(t_floor, t_wall)
                label = np.where(t_obj < t_room, 2, room)
                t = np.minimum(t_obj, t_room)
                normal = np.where((label == 2)[:, None], n_obj,
                                  np.where((label == 0)[:, None], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]))
                lambert = np.clip(normal @ _LIGHT, 0.0, 1.0)
                # Shadow: does a ray from a floor/wall point towards the light meet the object?
                p = o + t[:, None] * d
                shadow_t, _ = _hit_object(p + 1e-4 * normal, np.broadcast_to(_LIGHT, p.shape), shape, a)
                lit = np.where((label != 2) & np.isfinite(shadow_t), 0.0, lambert)
                shade = _AMBIENT + (1 - _AMBIENT) * lit
                labels[i, shape, j] = label
                shades[i, shape, j] = np.rint(shade * 255)
    labels, shades = labels.reshape(480, -1), shades.reshape(480, -1)
    labels.setflags(write=False)
    shades.setflags(write=False)
    return labels, shades


def _palette() -> np.ndarray:
    """uint16 [3 surfaces, 10 hues, 3]: floor, wall and object colours (HSV, fixed S and V)."""
    sv = ((0.55, 0.95), (0.45, 0.9), (0.85, 1.0))
    return np.array([[[round(255 * c) for c in colorsys.hsv_to_rgb(h, s, v)] for h in _HUES] for s, v in sv],
                    dtype=np.uint16)


def _colour_table() -> np.ndarray:
    """uint8 [3 surfaces, 10 hues, 256 shades, 3]: ``(shade · rgb + 127) // 255``, all in integers."""
    shade = np.arange(256, dtype=np.uint32)[None, None, :, None]
    return ((shade * _palette()[:, :, None, :] + 127) // 255).astype(np.uint8)


_COLOURS = _colour_table()


@lru_cache(maxsize=1)
def _codes() -> np.ndarray:
    """uint16 [480, 4096]: ``label * 256 + shade``, a pixel's row in its image's colour table."""
    labels, shades = geometry_maps()
    codes = labels.astype(np.uint16) * 256 + shades
    codes.setflags(write=False)
    return codes


class Shapes3DProcedural(GroundTruthData):
    name = "shapes3d_procedural"
    factor_names = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    factor_sizes = (10, 10, 10, 8, 4, 15)
    observation_shape = (64, 64, 3)

    def images(self, all_factors: np.ndarray) -> np.ndarray:
        f = np.asarray(all_factors, dtype=np.int64)
        n = len(f)
        g = (f[:, 3] * 4 + f[:, 4]) * 15 + f[:, 5]
        # Each image's colour table (3 surfaces × 256 shades), then one gather per pixel.
        tables = _COLOURS[np.arange(3), f[:, :3]].reshape(n * 3 * 256, 3)
        rows = _codes()[g] + (np.arange(n, dtype=np.int32) * (3 * 256))[:, None]
        return np.take(tables, rows, axis=0).reshape(n, _SIZE, _SIZE, 3)
