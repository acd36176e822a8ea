"""Training: the configuration (train.py's flags), the two training steps, the training state and the loop.

    state = TrainingState(TrainConfig(epochs=5), "runs/mine")
    train(state, load_training_data(state.config))     # or start(config): a whole run, as train.py does
    state.export()
"""
from utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "TrainConfig": "training.config", "config_from_args": "training.config", "read_run_config": "training.config",
    "resolve_precision": "training.config", "load_training_data": "training.config",
    "GANimationSteps": "training.steps", "generate": "training.steps",
    "TrainingState": "training.state", "transfer_run": "training.state",
    "train": "training.loop", "start": "training.loop", "sample_grid": "training.loop",
    "make_strategy": "training.distribute",
    "learning_rate": "training.schedule", "warmup_weight": "training.schedule",
    "write_run_dir": "training.import_torch", "convert": "training.import_torch",
})
