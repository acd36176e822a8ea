"""The ground-truth benchmark: edits of held-out synthetic faces scored against their true renders.

    metrics, cases, results = evaluate(load_model("runs/RUN/export"))
    write_report("eval", metrics, cases, results)
"""
from utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "evaluate": "evaluation.groundtruth", "summary_scalars": "evaluation.groundtruth",
    "single_au_gain": "evaluation.groundtruth",
    "write_report": "evaluation.report", "markdown": "evaluation.report",
})
