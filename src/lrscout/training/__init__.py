"""Training: the loop, the divergence guard, loss-log diagnosis, and ``train`` on a task.

    fit(model, optimizer, train_data, val_data, epochs=...)   the loop (any model)
    Guard(model, optimizer, scheduler=...)                    divergence guard for any loop
    train(task, lr="find", schedule="onecycle", epochs=5)     a named task, files and all
    resume_train(out_dir)                                     continue an interrupted train run
    diagnose(steps, losses) -> Diagnosis                      verdict on a loss curve
    read_loss_log(path) -> LossLog                            CSV / JSON / TensorBoard logs
"""

from .diagnosis import Diagnosis, diagnose
from .guard import Guard
from .logs import LossLog, read_loss_log
from .loop import EpochStats, FitResult, evaluate, fit
from .result import TrainResult
from .run import resume_train, train

__all__ = ["Diagnosis", "EpochStats", "FitResult", "Guard", "LossLog", "TrainResult", "diagnose", "evaluate", "fit",
           "read_loss_log", "resume_train", "train"]
