"""The command line's words for each TrainConfig field: what the flag does and which values it takes (its
default is added after it). Torch-free, like the config itself: ``cifarnb train --help`` imports neither."""

from __future__ import annotations

from . import config as config_choices

# Every TrainConfig field's flag says what it does and which values it takes; its default is added after it.
FIELD_HELP = {
    "model_options": "model keyword options as key=value (repeatable), e.g. --model-options dropout=0.3",
    "activation": "override the model's activation: " + " | ".join(config_choices.ACTIVATIONS) + "; None: the "
                  "model's own",
    "epochs": "training epochs, a whole number >= 1",
    "batch_size": "training images per step, a whole number >= 1",
    "lr": "learning rate (the peak, for schedules that warm up), a number > 0",
    "momentum": "momentum (SGD), a number >= 0",
    "nesterov": "Nesterov momentum (SGD)",
    "weight_decay": "L2 weight decay, a number >= 0",
    "optimizer": " | ".join(config_choices.OPTIMIZERS),
    "loss": " | ".join(config_choices.LOSSES),
    "label_smoothing": "label smoothing in [0, 1] (cross_entropy only)",
    "scheduler": " | ".join(config_choices.SCHEDULERS) + " (piecewise needs --lr-knots)",
    "plateau_metric": "what the plateau scheduler watches, in min mode: " + " | ".join(config_choices.PLATEAU_METRICS),
    "plateau_factor": "plateau: the rate's factor at each drop, in [0, 1]",
    "plateau_patience": "plateau: epochs without improvement before a drop, a whole number >= 0",
    "plateau_cooldown": "plateau: epochs after a drop before watching again, a whole number >= 0",
    "min_lr": "plateau and cosine: the lowest rate, a number >= 0",
    "step_size": "step: epochs between drops, a whole number >= 1; None: a third of the run",
    "step_gamma": "step: the rate's factor at each drop, in [0, 1]",
    "exponential_gamma": "exponential: the rate's factor per epoch, in [0, 1]",
    "linear_end_factor": "linear: the final rate as a fraction of --lr, in [0, 1]",
    "linear_epochs": "linear: epochs to reach the end factor, a whole number >= 1; None: the whole run",
    "schedule_lag_epochs": "per-epoch schedules: epochs run at --lr before the schedule starts, a whole number "
                           ">= 1 (main.py's cosine and exponential: 1); None: none",
    "onecycle_pct_start": "onecycle: the fraction of the run spent warming up, in (0, 1)",
    "lr_knots": "piecewise schedule as JSON [[epoch, factor], ...], e.g. [[0,0],[2,1],[8,0.1]]",
    "tta_flip": "evaluate each test image with its mirror image (averaged logits)",
    "ema_decay": "evaluate an exponential moving average of the weights with this factor per update, in (0, 1); "
                 "None: no average",
    "ema_every": "training steps between updates of the average, a whole number >= 1",
    "augment": "random crop (padding 4) and horizontal flip of the training images",
    "augmentation": "how crop and flip are drawn: per_image | per_batch (one draw per batch)",
    "drop_last": "skip each epoch's last, partial training batch",
    "normalization": "cifar10 (the data set's mean and std) | half (0.5 and 0.5: pixels to [-1, 1])",
    "n_train": "train on a class-balanced subset of this many images, 1..50000; None: all",
    "n_test": "evaluate on a class-balanced subset of this many images, 1..10000; None: all",
    "seed": "training seed, a whole number >= 0",
    "subset_seed": "seed choosing --n-train/--n-test subsets, a whole number >= 0",
    "device": "auto | cpu | cuda | cuda:N",
    "loader": "tensor (on-device) | torchvision (the report's pipeline)",
    "num_workers": "torchvision loader: worker processes, a whole number >= 0",
    "precision": " | ".join(config_choices.PRECISIONS) + " (autocast on CUDA only)",
    "channels_last": "channels-last memory format (faster convolutions on recent GPUs)",
    "compile": "torch.compile the training step",
    "eval_batch_size": "test images per evaluation batch, a whole number >= 1",
    "compile_mode": " | ".join(config_choices.COMPILE_MODES),
    "cudnn_benchmark": "let cuDNN time its convolution algorithms per input shape (CUDA)",
    "data_root": "folder holding cifar-10-batches-py/; None: $CIFARNB_DATA, else ./data",
    "checkpoint_every_s": "write a checkpoint once this many seconds have passed since the last, a number > 0; "
                          "None: after every epoch",
    "bn_shards": "BatchNorm normalises each of this many pieces of a batch alone (as nn.DataParallel on that "
                 "many GPUs), a whole number >= 1; None: the whole batch",
    "bias_lr_factor": "1-D parameters (BN shifts, biases) train at --lr times this, a number >= 0; None: at --lr",
    "bias_weight_decay": "weight decay of the 1-D parameters, a number >= 0; None: --weight-decay",
    "eval_every_steps": "also evaluate every this many training steps (kept in the epoch's history row), a whole "
                        "number >= 1; None: once per epoch",
}
