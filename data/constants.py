"""Action Units as GANimation uses them: the 17 OpenFace intensity (`_r`) columns, in this order."""

AU_NAMES = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)
NUM_AUS = len(AU_NAMES)  # 17
AU_MAX = 5.0  # OpenFace intensities lie in [0, 5]; the networks see them divided by AU_MAX.

# FACS names, for help texts, sliders and plots.
AU_DESCRIPTIONS = {
    "AU01": "inner brow raiser",
    "AU02": "outer brow raiser",
    "AU04": "brow lowerer",
    "AU05": "upper lid raiser",
    "AU06": "cheek raiser",
    "AU07": "lid tightener",
    "AU09": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU17": "chin raiser",
    "AU20": "lip stretcher",
    "AU23": "lip tightener",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU45": "blink",
}

# How the generator sees the target labels (models/networks.py, get_generator): the paper's AUs tiled over the
# image, or a label embedding driving AdaIN layers (the variant of the COMP4801 interim report).
CONDITIONINGS = ("tile", "adain")
