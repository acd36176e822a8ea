"""data/faces.py on a real photo (scikit-image's astronaut): detection, eye alignment, paste-back."""
import cv2
import numpy as np
import pytest
import skimage.data

from data.faces import DEFAULT_MARGIN, EYES_ABOVE_CENTER, FACE_WIDTH, Face, align_face, detect_faces, paste_face

# Where the face is in skimage.data.astronaut() (512 x 512): its box, by eye, in pixels.
FACE_BOX = (175, 55, 270, 180)
EYE_Y = 0.5 - EYES_ABOVE_CENTER / (FACE_WIDTH * (1 + 2 * DEFAULT_MARGIN))  # template eye height, fraction of side
EYE_GAP = 1 / (FACE_WIDTH * (1 + 2 * DEFAULT_MARGIN))                      # template eye distance, fraction


@pytest.fixture(scope="module")
def astronaut():
    return np.ascontiguousarray(skimage.data.astronaut())


def rotate(image, degrees):
    h, w = image.shape[:2]
    R = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, R, (w, h), borderMode=cv2.BORDER_REFLECT_101)


def eye_line(face):
    (lx, ly), (rx, ry) = face.keypoints[:2]
    return np.degrees(np.arctan2(ry - ly, rx - lx))


def test_finds_the_face_where_it_is(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.box
    assert FACE_BOX[0] <= x1 < x2 <= FACE_BOX[2] and FACE_BOX[1] <= y1 < y2 <= FACE_BOX[3]
    assert face.confidence > 0.99 and face.keypoints.shape == (5, 2)
    left, right, nose, mouth_left, mouth_right = face.keypoints
    assert left[0] < nose[0] < right[0] and mouth_left[0] < mouth_right[0]  # "left" is the image's left
    assert max(left[1], right[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.keypoints)


def test_aligned_crop_has_level_eyes_at_the_template_positions(astronaut):
    tilted = rotate(astronaut, 20)
    face = detect_faces(tilted)[0]
    assert eye_line(face) < -12  # the photo's eye line really is tilted (OpenCV turns anticlockwise)
    crop, M = align_face(tilted, face, size=128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8 and M.shape == (2, 3)
    eyes = np.hstack([face.keypoints[:2], np.ones((2, 1))]) @ M.T  # where M sends the detected eyes
    np.testing.assert_allclose(eyes, [[64 - 64 * EYE_GAP, 128 * EYE_Y], [64 + 64 * EYE_GAP, 128 * EYE_Y]],
                               atol=1e-6)
    again = detect_faces(crop, min_size=10)  # and the crop's own eyes, found anew, are level there
    assert len(again) == 1 and abs(eye_line(again[0])) < 2.5
    np.testing.assert_allclose(again[0].keypoints[:2], eyes, atol=3)


def test_crop_size_and_margin(astronaut):
    face = detect_faces(astronaut)[0]
    small, M_small = align_face(astronaut, face, size=64, margin=0.0)
    wide, M_wide = align_face(astronaut, face, size=64, margin=0.5)
    assert small.shape == wide.shape == (64, 64, 3)
    scale = lambda M: np.hypot(M[0, 0], M[0, 1])
    assert scale(M_small) / scale(M_wide) == pytest.approx(2.0)  # margin 0.5 doubles the side: 1 + 2 x 0.5


def test_paste_back_inverts_the_crop(astronaut):
    face = detect_faces(astronaut)[0]
    crop, M = align_face(astronaut, face)
    same = paste_face(astronaut, crop, M)
    assert same.shape == astronaut.shape and np.abs(same.astype(int) - astronaut).mean() < 1.0
    dark = paste_face(astronaut, np.zeros_like(crop), M)
    eyes = face.keypoints[:2].mean(axis=0).round().astype(int)
    assert dark[eyes[1], eyes[0]].max() == 0                         # the face is replaced...
    np.testing.assert_array_equal(dark[400:, :100], astronaut[400:, :100])  # ...and only the face


def test_no_face_several_faces_and_large_photos(astronaut):
    assert detect_faces(np.ascontiguousarray(skimage.data.coffee())) == []
    half = np.full_like(astronaut, 128)
    half[128:384, 128:384] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    pair = detect_faces(np.hstack([half, astronaut]))
    assert len(pair) == 2 and pair[0].box[0] > 512 > pair[1].box[0]  # the larger face (right half) first
    assert pair[0].area > 3 * pair[1].area
    big = cv2.resize(astronaut, (1024, 1024))
    found = detect_faces(big, max_side=512)  # searched at 512 px, reported in the photo's 1024-pixel frame
    assert len(found) == 1
    np.testing.assert_allclose(found[0].box, np.array(detect_faces(astronaut)[0].box) * 2, atol=12)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="uint8 RGB"):
        detect_faces(np.zeros((10, 10), np.uint8))
    face = Face(box=(0, 0, 1, 1), keypoints=np.zeros((5, 2)), confidence=1.0)
    with pytest.raises(ValueError, match="eye keypoints coincide"):
        align_face(np.zeros((10, 10, 3), np.uint8), face)


def test_large_faces_are_cropped_where_the_matrix_says():
    """A face 8x larger than the crop is warped at a multiple of the size and area-averaged: each crop pixel must
    still show the photo at M^-1 of its centre. On steep linear ramps, a half-pixel slip would cost > 2 levels."""
    from data.faces import Face, align_face
    h = w = 2400
    x0, x1 = 1000.0, 1400.0  # the ramps rise over 400 photo px = 50 crop px (5 levels per crop pixel)
    ramp = np.clip((np.arange(w, dtype=np.float32) - x0) * 255 / (x1 - x0), 0, 255)
    photo = np.dstack([np.tile(ramp, (h, 1)), np.tile(ramp[:, None], (1, w)), np.full((h, w), 128, np.float32)])
    photo = photo.round().astype(np.uint8)
    eyes = np.array([[1000.0, 1100.0], [1400.0, 1110.0]])  # 400 px apart: the crop is warped at zoom 8
    keypoints = np.vstack([eyes, [[1200, 1300], [1050, 1500], [1350, 1500]]])
    crop, M = align_face(photo, Face((900, 900, 1500, 1700), keypoints, 0.99), size=128)
    inverse = cv2.invertAffineTransform(M)
    j, i = np.mgrid[0:128, 0:128]
    x = inverse[0, 0] * i + inverse[0, 1] * j + inverse[0, 2]
    y = inverse[1, 0] * i + inverse[1, 1] * j + inverse[1, 2]
    for channel, coord in ((0, x), (1, y)):
        inside = (coord > x0 + 8) & (coord < x1 - 8)  # on the ramp, away from its kinks
        expected = (coord - x0) * 255 / (x1 - x0)
        assert inside.sum() > 1000
        assert np.abs(crop[..., channel][inside] - expected[inside]).max() < 1.2
