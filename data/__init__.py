"""Face data: the loader training calls (`load_dataset`: any layout, checked, one summary), the built-in
synthetic faces, the tf.data pipeline, TFRecord shards, AU files and images.

    faces = load_dataset("DATASET", image_size=128)     # or make_synthetic_faces(40, 50)
    for real, y_src in make_dataset(faces, batch_size=25, image_size=128): ...
"""
from utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "load_dataset": "data.dataset", "check_images": "data.dataset",
    "read_dataset": "data.readers", "detect_layout": "data.readers",
    "FaceSet": "data.faceset", "ShardSet": "data.shards",
    "make_dataset": "data.pipeline", "steps_per_epoch": "data.pipeline",
    "make_synthetic_faces": "data.synthetic", "render_face": "data.synthetic", "sample_aus": "data.synthetic",
    "write_shards": "data.shards", "load_shards": "data.shards",
    "Problems": "data.problems", "write_problems_csv": "data.problems",
    "read_au_csv": "data.aus", "write_au_csv": "data.aus", "parse_aus": "data.aus",
    "read_image": "data.images", "write_image": "data.images", "resize_square": "data.images",
    "list_images": "data.images", "IMAGE_EXTENSIONS": "data.images", "MAX_PIXELS": "data.images",
    "detect_faces": "data.faces", "align_face": "data.faces", "paste_face": "data.faces",
    "to_model_pixels": "data.scales", "to_uint8_pixels": "data.scales", "to_model_aus": "data.scales",
    "to_openface_aus": "data.scales",
    "AU_NAMES": "data.constants", "NUM_AUS": "data.constants", "AU_MAX": "data.constants",
    "AU_DESCRIPTIONS": "data.constants",
})
