"""Editing faces with an export: crops, photos (faces found, edited and pasted back), expressions, animations
and videos; the named results and the one writer of their files.

    model = load_model(resolve_model_dir("runs/RUN"))
    photo = find_faces(read_image("photo.jpg"), model.image_size)       # read_image: data
    for edit in edit_photos(model, [(photo, "photo")], expression_aus("happy")[None], ["happy"], Options()):
        write_edit(edit, "out", fps=12)                       # out/photo_happy.png
"""
from utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "load_model": "inference.edit", "resolve_model_dir": "inference.edit", "edit_crop": "inference.edit",
    "edit_pairs": "inference.edit", "estimate_aus": "inference.edit",
    "find_faces": "inference.photo", "paste_back": "inference.photo",
    "Options": "inference.outputs", "Edit": "inference.outputs", "edit_photos": "inference.outputs",
    "write_edit": "inference.outputs", "write_face_crops": "inference.outputs",
    "expression_aus": "inference.expressions", "EXPRESSIONS": "inference.expressions",
    "frame_weights": "inference.animate", "interpolate": "inference.animate",
    "open_driver": "inference.video", "reenact": "inference.video",
})
