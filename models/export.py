"""The SavedModel export: what infer.py, evaluation and other programs load.

Signatures (see `saved_model_cli show --all --dir EXPORT`):
  serving_default / edit:  images uint8 (N, S, S, 3), aus float32 (N, 17) on OpenFace's 0-5 scale
                           -> images uint8 (N, S, S, 3), attention float32 (N, S, S, 1) in [0, 1],
                              color uint8 (N, S, S, 3)
  estimate_aus:            images uint8 (N, S, S, 3) -> aus float32 (N, 17) on the 0-5 scale
                           (the discriminator's AU head)
Next to the SavedModel, `ganimation.json` records the image size and how the model was built, among it the
generator's `conditioning` (tile or adain) and `label_size` (17 AUs; `aus` is (N, label_size) in both signatures).
"""
import json
import os

import tensorflow as tf

from data.constants import AU_NAMES, NUM_AUS
from data.scales import to_model_aus, to_model_pixels, to_openface_aus, to_uint8_pixels
from models.export_folder import METADATA_FILE, is_export, read_metadata, recover_export  # noqa: F401 (API)
from models.ops import compose
from utils.errors import UserError
from utils.files import atomic_write_text, replace_folder


class GANimationModule(tf.Module):
    """Wraps the TensorLayer networks for tf.saved_model. A TL Model is not a tf.Module, so the wrapper holds
    the weights as attributes itself (otherwise the export fails with an 'untracked resource' error)."""

    def __init__(self, G, D, image_size):
        super().__init__(name="ganimation")
        G.eval()
        D.eval()
        self._G, self._D = G, D
        self.g_weights = list(G.all_weights)
        self.d_weights = list(D.all_weights)
        images = tf.TensorSpec([None, image_size, image_size, 3], tf.uint8, name="images")
        aus = tf.TensorSpec([None, G.label_size], tf.float32, name="aus")
        # No XLA: on TensorFlow 2.21 it is no faster for one image (fp32 64 px 12.1 against 11.3 ms, 128 px 131
        # against 126-133 ms), slower in bf16 and for batches (docs/speed.md).
        self.edit = tf.function(self._edit, input_signature=[images, aus])
        self.estimate_aus = tf.function(self._estimate_aus, input_signature=[images])

    def _edit(self, images, aus):
        real = to_model_pixels(images)
        color, attention = self._G([real, to_model_aus(aus)])
        fake = compose(attention, real, color)
        return {"images": to_uint8_pixels(fake), "attention": attention, "color": to_uint8_pixels(color)}

    def _estimate_aus(self, images):
        aus = self._D(to_model_pixels(images))[1]
        return {"aus": to_openface_aus(aus)}


def export_saved_model(G, D, out_dir, metadata):
    """Write a SavedModel of (G, D) to out_dir, atomically (utils.files.replace_folder, with ganimation.json as
    the completion marker): an old export stays loadable until the new one has replaced it, and a killed export
    is recovered or cleaned up by the next one. The metadata written beside it gets the generator's conditioning
    and label size from G itself (models/networks.py)."""
    # XLA helps single fp32 images only; it made single bf16 images slower (105 against 43 ms at 128 px).
    module = GANimationModule(G, D, metadata["image_size"])
    signatures = {"serving_default": module.edit, "edit": module.edit, "estimate_aus": module.estimate_aus}
    recover_export(out_dir, clean=True)  # exports from before replace_folder, too
    with replace_folder(out_dir, METADATA_FILE) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        meta = dict(metadata, conditioning=G.conditioning, label_size=G.label_size,
                    format="ganimation-tl-savedmodel-1")
        if G.label_size == NUM_AUS:
            meta["au_names"] = list(AU_NAMES)
        atomic_write_text(os.path.join(tmp, METADATA_FILE), json.dumps(meta, indent=2, sort_keys=True))
    return out_dir


class LoadedModel:
    """An export loaded back: `edit(images_uint8, aus_0_5)` and `estimate_aus(images_uint8)` on numpy arrays."""

    def __init__(self, path):
        self.path = path
        self.metadata = read_metadata(path)
        self.image_size = int(self.metadata["image_size"])
        self.conditioning, self.label_size = self.metadata["conditioning"], self.metadata["label_size"]
        try:
            self._module = tf.saved_model.load(path)
        except Exception as e:  # a corrupt or foreign SavedModel
            raise UserError(path, f"cannot load the SavedModel ({type(e).__name__})") from None

    def edit(self, images, aus):
        out = self._module.edit(tf.convert_to_tensor(images, tf.uint8), tf.convert_to_tensor(aus, tf.float32))
        return {k: v.numpy() for k, v in out.items()}

    def estimate_aus(self, images):
        return self._module.estimate_aus(tf.convert_to_tensor(images, tf.uint8))["aus"].numpy()


class InMemoryModel:
    """The export's `edit` / `estimate_aus` on networks still in memory (evaluation during training)."""

    def __init__(self, G, D, image_size):
        self.image_size = image_size
        self._module = GANimationModule(G, D, image_size)

    def edit(self, images, aus):
        out = self._module.edit(tf.convert_to_tensor(images, tf.uint8), tf.convert_to_tensor(aus, tf.float32))
        return {k: v.numpy() for k, v in out.items()}

    def estimate_aus(self, images):
        return self._module.estimate_aus(tf.convert_to_tensor(images, tf.uint8))["aus"].numpy()
