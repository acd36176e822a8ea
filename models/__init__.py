"""The networks: their configuration, the builders, the SavedModel export and loading it back, transfer to
another label set, and the PyTorch checkpoint import.

    G, D = build_networks(NetworkConfig(image_size=64, g_conv_dim=32))    # or get_generator / get_discriminator
    export_saved_model(G, D, "export", NetworkConfig().metadata())
"""
from utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "NetworkConfig": "models.config", "PRECISIONS": "models.config", "SHAPE_FIELDS": "models.config",
    "get_generator": "models.networks", "get_discriminator": "models.networks",
    "build_networks": "models.networks", "build_generator": "models.networks",
    "count_parameters": "models.networks",
    "tile_aus": "models.ops", "compose": "models.ops",
    "export_saved_model": "models.export", "LoadedModel": "models.export", "InMemoryModel": "models.export",
    "read_metadata": "models.export_folder", "is_export": "models.export_folder",
    "transfer_networks": "models.transfer", "copy_weights": "models.transfer",
    "read_checkpoints": "models.convert_torch", "import_networks": "models.convert_torch",
})
