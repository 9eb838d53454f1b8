"""Training loop for :class:`~classicfer.cnn_head.model.FerNet` (needs torch).

:func:`fit` takes its settings as a :class:`TrainConfig` (or as keywords naming its
fields) and runs small steps: prepare the tensors, build and initialise the network,
optimiser and schedule, resume, then per epoch train, average (SWA), validate and
checkpoint. Everything runs on batch tensors: the images are converted to one float
tensor once, and augmentation (rotation, zoom, shift, horizontal flip,
random erasing) is a single ``affine_grid``/``grid_sample`` call per batch.
Checkpoints are written atomically every epoch (``last.pt``: model,
optimiser, schedule, epoch, RNG-free deterministic state, history) and the
best epoch on the validation split is kept in ``best.pt``; they hold tensors and plain
data only and are read back with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..exceptions import ConfigError, DataError, ModelError
from .model import build_model, count_flops, count_params

DEFAULT_MODEL = {"widths": (16, 32, 64, 128), "attention": True, "dropout": 0.3}

DEFAULT_AUG = {"rotate": 15.0, "zoom": 0.15, "shift": 0.10, "flip": True, "erase": 0.25}


def set_threads(n: int | None = None) -> int:
    """Use ``n`` torch threads (None or 0: all cores); returns the number set."""
    n = int(n or os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def to_tensor(images) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) float32 in [0, 1]."""
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise DataError(f"expected (N, H, W) grayscale crops, got an array of shape {arr.shape}; "
                        "resize the images to one size first")
    return torch.from_numpy(arr.astype(np.float32) / 255.0).unsqueeze(1)


def resize_crops(images, size) -> np.ndarray:
    """(N, H, W) crops resized to ``size`` (a side, or (height, width)).

    Area interpolation when shrinking, bilinear otherwise (``cv2.resize``); uint8 crops stay
    uint8, others become float32. Crops of that size already are returned as they are.
    """
    import cv2

    h, w = (size, size) if isinstance(size, int | np.integer) else map(int, size)
    arr = np.asarray(images)
    if arr.ndim != 3 or arr.shape[1:] == (h, w):
        return arr  # to_tensor explains what is not (N, H, W)
    interp = cv2.INTER_AREA if h < arr.shape[1] and w < arr.shape[2] else cv2.INTER_LINEAR
    dtype = np.uint8 if arr.dtype == np.uint8 else np.float32
    out = np.empty((len(arr), h, w), dtype=dtype)
    for i, im in enumerate(arr):
        out[i] = cv2.resize(np.ascontiguousarray(im, dtype=dtype), (w, h), interpolation=interp)
    return out


def augment_batch(x: torch.Tensor, gen: torch.Generator, aug: dict) -> torch.Tensor:
    """Random affine (rotation, zoom, shift, flip) + random erasing, on a whole batch."""
    n = x.shape[0]

    def u():
        return torch.rand(n, generator=gen) * 2 - 1

    ang = u() * math.radians(aug.get("rotate", 0.0))
    scale = 1.0 + u() * aug.get("zoom", 0.0)        # >1 zooms out, <1 zooms in
    tx, ty = u() * aug.get("shift", 0.0) * 2, u() * aug.get("shift", 0.0) * 2
    flip = torch.ones(n)
    if aug.get("flip", True):
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(ang) * scale, torch.sin(ang) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1),
                         torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    p = aug.get("erase", 0.0)
    if p > 0:
        h, w = x.shape[-2:]
        sel = torch.rand(n, generator=gen) < p
        eh = (torch.rand(n, generator=gen) * 0.3 + 0.1) * h
        ew = (torch.rand(n, generator=gen) * 0.3 + 0.1) * w
        cy = torch.rand(n, generator=gen) * h
        cx = torch.rand(n, generator=gen) * w
        yy = torch.arange(h).view(1, h, 1)
        xx = torch.arange(w).view(1, 1, w)
        box = ((yy - cy.view(n, 1, 1)).abs() < eh.view(n, 1, 1) / 2) & \
              ((xx - cx.view(n, 1, 1)).abs() < ew.view(n, 1, 1) / 2) & sel.view(n, 1, 1)
        fill = torch.rand(n, generator=gen).view(n, 1, 1)
        out = torch.where(box.unsqueeze(1), fill.unsqueeze(1), out)
    if aug.get("corrupt", 0.0) > 0:
        from ._corrupt import corrupt_batch

        out = corrupt_batch(out, gen, aug["corrupt"])
    return out


@torch.no_grad()
def predict_logits(model, x: torch.Tensor, mean: float, std: float, *, batch_size: int = 512,
                   flip: bool = False) -> torch.Tensor:
    """Logits for (N, 1, H, W) float [0, 1] images; ``flip`` averages with the mirror image."""
    was = model.training
    model.eval()
    outs = []
    for i in range(0, x.shape[0], batch_size):
        xb = ((x[i:i + batch_size] - mean) / std).contiguous(memory_format=torch.channels_last)
        lo = model(xb)
        if flip:
            lo = (lo + model(torch.flip(xb, dims=[3]))) / 2
        outs.append(lo)
    model.train(was)
    return torch.cat(outs) if outs else torch.zeros(0, model.config["n_classes"])


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@dataclass
class TrainConfig:
    """The settings of one training run of :func:`fit` (everything that shapes the weights).

    Parameters
    ----------
    epochs : int
        Total number of epochs of the schedule (one-cycle warm-up + cosine, or one cosine
        cycle per epoch with ``swa``).
    batch_size : int
        Images per optimiser step.
    lr : float
        Peak learning rate (with ``swa``: the start of every cycle, which ends at ``lr / 100``).
    weight_decay : float
        AdamW weight decay of the weights (biases and batch-norm parameters get none).
    label_smoothing : float
        Label smoothing of the cross-entropy.
    warmup : float
        Fraction of the one-cycle schedule spent warming up.
    seed : int
        Seed of the initial weights, the batch order, the augmentation and the dropout.
    aug : dict or None
        Augmentation settings (:func:`augment_batch`: ``rotate``, ``zoom``, ``shift``,
        ``flip``, ``erase``, ``corrupt``); None means :data:`DEFAULT_AUG`.
    model_config : dict or None
        Network settings over :data:`DEFAULT_MODEL` (``arch``, ``widths``, ``attention``,
        ``dropout``...); ``n_classes`` comes from the class list.
    norm : (float, float) or None
        (mean, std) of the input; computed on the training images when None.
    freeze_epochs : int
        Train only the head for that many epochs first (transfer learning).
    grow : bool
        Let the initial weights come from a smaller network of the same family (e.g. one
        stage fewer): layers it holds with the same shapes are copied, the others keep
        their fresh initialisation.
    swa : bool
        Stochastic weight averaging (Izmailov et al., 2018), meant for continuing from
        initial weights: the learning rate follows one cosine cycle per epoch
        (:class:`torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`), the weights at the
        end of every cycle are averaged (:class:`torch.optim.swa_utils.AveragedModel`),
        batch-norm statistics of the average are recomputed on training images
        (:func:`torch.optim.swa_utils.update_bn`) and the *average* is what is validated,
        checkpointed and returned.
    distill : float
        Weight of the knowledge-distillation term (Hinton et al., 2015), in [0, 1]: the loss
        becomes ``(1 - distill) * cross-entropy + distill * T**2 * KL(teacher_T ||
        student_T)`` (needs teacher logits).
    distill_temperature : float
        ``T``, the softening temperature of teacher and student (> 0).
    class_weight : array-like of shape (n_classes,) or None
        Weights of the classes in the loss (positive).
    threads : int or None
        Torch threads (None: all cores).

    Numpy scalars are turned into Python numbers, so that checkpoints hold plain data only.
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup: float = 0.15
    seed: int = 0
    aug: dict | None = None
    model_config: dict | None = None
    norm: tuple | None = None
    freeze_epochs: int = 0
    grow: bool = False
    swa: bool = False
    distill: float = 0.0
    distill_temperature: float = 2.0
    class_weight: object = None
    threads: int | None = None

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name not in ("aug", "class_weight"):
                setattr(self, f.name, _plain(getattr(self, f.name)))


def _plain(value):
    """``value`` with numpy scalars (also inside dicts, lists and tuples) as Python scalars."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_plain(v) for v in value)
    return value


def make_config(config: TrainConfig | None = None, **settings) -> TrainConfig:
    """A :class:`TrainConfig`: ``config`` (default: the defaults) with ``settings`` replaced.

    Raises
    ------
    TypeError
        A setting that is not a field of :class:`TrainConfig`.
    """
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r}")
    return dataclasses.replace(config or TrainConfig(), **settings)


def fit(x_train, y_train, x_val=None, y_val=None, *, classes, config: TrainConfig | None = None,
        init_state=None, teacher_logits=None, out_dir=None, resume: bool = False,
        stop_after: int | None = None, progress: bool = True, log=print, **settings) -> dict:
    """Train a :class:`FerNet` and return the best model (on ``x_val``) and its history.

    Parameters
    ----------
    x_train, x_val : (N, H, W) uint8 arrays or (N, 1, H, W) float tensors in [0, 1]
        Training and validation crops; no (or an empty) ``x_val`` keeps the last epoch.
    y_train : array-like
        Int class indices into ``classes``, or an (N, n_classes) float array of target
        distributions (e.g. FER+ annotators' votes; Barsoum et al. 2016's "probability"
        mode: cross-entropy against the distribution).
    y_val : array-like
        Int class indices into ``classes``.
    classes : list of str
        The class names, in output order.
    config : TrainConfig, optional
        The training settings; ``settings`` given as keywords replace its fields.
    init_state : dict, optional
        A state dict to start from (transfer learning); a head of a different size is
        replaced (see ``grow`` in :class:`TrainConfig` for a smaller network).
    teacher_logits : (N, n_classes) array, optional
        Logits of a teacher (e.g. an ensemble) on ``x_train``, for distillation
        (``distill`` in :class:`TrainConfig`).
    out_dir : path, optional
        Folder for ``last.pt`` (resumable), ``best.pt`` and ``history.jsonl``.
    resume : bool
        Continue from ``out_dir/last.pt`` (same settings, same schedule).
    stop_after : int, optional
        Run at most that many epochs in this call (resume later with ``resume``).
    progress : bool
        Show a progress bar per epoch.
    log : callable
        Called with one line of text per event (model size, each epoch, resume).
    **settings
        Fields of :class:`TrainConfig` (``epochs``, ``batch_size``, ``lr``, ``swa``...).

    Returns
    -------
    dict
        ``model`` (best epoch, eval mode), ``best_epoch``, ``best_val_acc`` (None without
        validation), ``history`` (list of per-epoch dicts), ``mean``, ``std``, ``classes``,
        ``config`` (the network configuration).
    """
    cfg = make_config(config, **settings)
    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {cfg.epochs}")
    set_threads(cfg.threads)
    aug = dict(DEFAULT_AUG if cfg.aug is None else cfg.aug)
    classes = _plain(list(classes))
    data = _prepare_data(x_train, y_train, x_val, y_val, len(classes), cfg, teacher_logits)
    network = _network_config(cfg.model_config, len(classes))
    run = _start_run(_init_model(network, cfg, init_state, log), data, cfg)
    out = Path(out_dir) if out_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    if resume:
        _resume(run, out, network, classes, log)
    meta = _checkpoint_meta(network, classes, data, cfg)
    log(f"model: {count_params(run.model):,} parameters, "
        f"{count_flops(run.model, tuple(data.x.shape[-2:])) / 1e6:.1f} M multiply-adds; "
        f"{data.x.shape[0]} train / {0 if data.x_val is None else data.x_val.shape[0]} val "
        f"images; {torch.get_num_threads()} threads")
    end_epoch = cfg.epochs if not stop_after else min(cfg.epochs,
                                                      run.start_epoch + int(stop_after))
    for epoch in range(run.start_epoch, end_epoch):
        improved = _run_epoch(run, epoch, aug, progress, log)
        if out:
            _save_checkpoints(run, out, meta, epoch, improved)
    model = run.model
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.eval()
    return {"model": model, "best_epoch": run.best_epoch,
            "best_val_acc": None if data.x_val is None else run.best_acc,
            "history": run.history, "mean": data.mean, "std": data.std,
            "classes": list(classes), "config": network}


@dataclass
class _Data:
    """The tensors of a training run."""

    x: torch.Tensor                      # (N, 1, H, W) float [0, 1]
    y: torch.Tensor                      # (N,) class indices
    soft_targets: torch.Tensor | None    # (N, C) target distributions, or None
    weight: torch.Tensor | None          # (C,) class weights of the loss, or None
    teacher: torch.Tensor | None         # (N, C) softened teacher probabilities, or None
    x_val: torch.Tensor | None           # no validation split: None
    y_val: torch.Tensor | None
    mean: float
    std: float


def _prepare_data(x_train, y_train, x_val, y_val, n_classes, cfg, teacher_logits) -> _Data:
    """The checked tensors of a run (input errors raised in the order a user meets them)."""
    xt = x_train if isinstance(x_train, torch.Tensor) else to_tensor(x_train)
    targets, yt = _targets(y_train, n_classes)
    weight = _class_weight(cfg.class_weight, n_classes)
    xv = yv = None
    if x_val is not None and len(x_val) > 0:
        xv = x_val if isinstance(x_val, torch.Tensor) else to_tensor(x_val)
        yv = torch.as_tensor(np.asarray(y_val), dtype=torch.long)
    if xt.shape[0] != yt.shape[0] or xt.shape[0] == 0:
        raise DataError(f"{xt.shape[0]} training images for {yt.shape[0]} labels")
    if int(yt.max()) >= n_classes or int(yt.min()) < 0:
        raise DataError(f"labels must be in 0..{n_classes - 1}")
    teacher = _teacher_targets(teacher_logits, cfg, xt.shape[0], n_classes)
    if cfg.norm is None:
        mean, std = float(xt.mean()), float(xt.std())
    else:
        mean, std = map(float, cfg.norm)
    return _Data(xt, yt, targets, weight, teacher, xv, yv, mean, std)


def _class_weight(class_weight, n_classes):
    """The loss's class weights as a tensor (None stays None); refuses a wrong length or sign."""
    if class_weight is None:
        return None
    weight = torch.as_tensor(np.asarray(class_weight, dtype=np.float32))
    if weight.shape != (n_classes,) or float(weight.min()) <= 0:
        raise ConfigError(f"class_weight must hold {n_classes} positive numbers")
    return weight


def _teacher_targets(teacher_logits, cfg, n, n_classes):
    """The teacher's softened probabilities for distillation, or None when ``distill`` is 0."""
    if not 0.0 <= cfg.distill <= 1.0:
        raise ConfigError(f"distill must be in [0, 1], got {cfg.distill}")
    if not cfg.distill > 0:
        return None
    if teacher_logits is None:
        raise ConfigError("distill > 0 needs teacher_logits")
    if cfg.distill_temperature <= 0:
        raise ConfigError(f"distill_temperature must be > 0, got {cfg.distill_temperature}")
    tl = torch.as_tensor(np.asarray(teacher_logits), dtype=torch.float32)
    if tl.shape != (n, n_classes):
        raise DataError(f"teacher_logits of shape {tuple(tl.shape)}, expected "
                        f"({n}, {n_classes})")
    return F.softmax(tl / cfg.distill_temperature, dim=1)


def _distill_setting(cfg):
    """``[weight, temperature]`` recorded in the checkpoints of a distilled run, else None."""
    return [cfg.distill, cfg.distill_temperature] if cfg.distill else None


def _network_config(model_config, n_classes) -> dict:
    """The network configuration: :data:`DEFAULT_MODEL` with ``model_config`` and the classes."""
    config = dict(DEFAULT_MODEL, **(model_config or {}))
    config["n_classes"] = n_classes
    config["widths"] = tuple(config["widths"])
    return config


def _init_model(network, cfg, init_state, log):
    """The seeded network, started from ``init_state`` when given, in channels-last layout."""
    torch.manual_seed(cfg.seed)
    model = build_model(network)
    if init_state is not None:
        _load_initial(model, init_state, network["n_classes"], cfg.grow, log)
    return model.to(memory_format=torch.channels_last)


def _load_initial(model, init_state, n_classes, grow, log) -> None:
    """Copy ``init_state`` into ``model``.

    A head of other classes is left out; with ``grow`` only the tensors of matching names
    and shapes are copied.
    """
    head_w = init_state.get("head.weight")
    if head_w is not None and head_w.shape[0] != n_classes:
        init_state = {k: v for k, v in init_state.items() if not k.startswith("head.")}
    if grow:
        own = model.state_dict()
        init_state = {k: v for k, v in init_state.items()
                      if k in own and own[k].shape == v.shape}
        if not any(k.startswith("features.") for k in init_state):
            raise ConfigError("grow: the initial weights share no layer with this model "
                              "(a different family of network?)")
    try:
        missing, unexpected = model.load_state_dict(init_state, strict=False)
    except RuntimeError as e:  # a layer of another shape
        first = str(e).strip().splitlines()[-1].strip()
        raise ConfigError(f"initial weights do not match the model configuration ({first})"
                          ) from None
    if grow:
        log(f"grown from a smaller network: {len(init_state)} tensors copied, "
            f"{len(missing)} freshly initialised")
    elif unexpected or [k for k in missing if not k.startswith("head.")]:
        raise ConfigError("initial weights do not match the model configuration "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


@dataclass
class _Run:
    """The state of a training run: network, optimiser, schedule, averaging, best so far."""

    cfg: TrainConfig
    data: _Data
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: object
    steps_per_epoch: int
    averaged: object = None              # torch.optim.swa_utils.AveragedModel with swa
    bn_idx: torch.Tensor | None = None   # training rows for the average's BN statistics
    start_epoch: int = 0
    best_acc: float = -1.0
    best_epoch: int = -1
    history: list = field(default_factory=list)
    best_state: dict | None = None


def _start_run(model, data: _Data, cfg: TrainConfig) -> _Run:
    """Optimiser (AdamW, no decay on biases and norms) and schedule of a fresh run."""
    steps_per_epoch = math.ceil(data.x.shape[0] / cfg.batch_size)
    decay, no_decay = [], []
    for _name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    if not cfg.swa:
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=steps_per_epoch * cfg.epochs, pct_start=cfg.warmup,
            anneal_strategy="cos", div_factor=20.0, final_div_factor=200.0)
        return _Run(cfg, data, model, opt, sched, steps_per_epoch)
    from torch.optim.swa_utils import AveragedModel

    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=steps_per_epoch, eta_min=cfg.lr / 100)
    # BN statistics of the average: a fixed sample of un-augmented training images
    n = data.x.shape[0]
    bn_idx = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))[:min(n, 8192)]
    return _Run(cfg, data, model, opt, sched, steps_per_epoch, AveragedModel(model), bn_idx)


def _resume(run: _Run, out, network: dict, classes: list, log) -> None:
    """Continue ``run`` from ``out/last.pt`` (and its best epoch from ``out/best.pt``)."""
    if not out or not (out / "last.pt").is_file():
        raise ConfigError(f"--resume: no checkpoint {out}/last.pt to resume from")
    ck = read_checkpoint(out / "last.pt")
    _check_resumable(ck, run.cfg, network, classes)
    run.model.load_state_dict(ck["model"])
    if run.averaged is not None:
        run.averaged.load_state_dict(ck["swa_state"])
    run.opt.load_state_dict(ck["optimizer"])
    run.sched.load_state_dict(ck["scheduler"])
    run.start_epoch, run.best_acc, run.best_epoch = (ck["epoch"] + 1, ck["best_val_acc"],
                                                     ck["best_epoch"])
    run.history, run.data.mean, run.data.std = ck["history"], ck["mean"], ck["std"]
    if (out / "best.pt").is_file():
        run.best_state = read_checkpoint(out / "best.pt")["model"]
    log(f"resumed from {out / 'last.pt'} at epoch {run.start_epoch + 1}/{run.cfg.epochs}")


def _check_resumable(ck: dict, cfg: TrainConfig, network: dict, classes: list) -> None:
    """A ConfigError when checkpoint ``ck`` was made with other settings than this run's."""
    if ck["config"] != network or ck["epochs"] != cfg.epochs or ck["classes"] != classes:
        raise ConfigError("--resume: the checkpoint was made with a different model, class "
                          "list or epoch count; use the same options or start afresh")
    if ck.get("distill") != _distill_setting(cfg):
        raise ConfigError("--resume: the checkpoint was made with other distillation "
                          "settings; use the same options or start afresh")
    if bool(ck.get("swa")) != cfg.swa:
        raise ConfigError("--resume: the checkpoint was made " + ("without" if cfg.swa else "with")
                          + " --swa; use the same options or start afresh")


def _checkpoint_meta(network: dict, classes: list, data: _Data, cfg: TrainConfig) -> dict:
    """What every checkpoint of the run records besides its weights."""
    meta = {"config": network, "classes": list(classes), "mean": data.mean, "std": data.std,
            "epochs": cfg.epochs, "size": list(data.x.shape[-2:])}
    if cfg.swa:
        meta["swa"] = True
    if _distill_setting(cfg):
        meta["distill"] = _distill_setting(cfg)
    return meta


def _run_epoch(run: _Run, epoch: int, aug: dict, progress: bool, log) -> bool:
    """Train, average (swa) and validate one epoch; record it. Returns whether it is the best."""
    t0, c0 = time.time(), time.process_time()
    rec = _train_epoch(run, epoch, aug, progress)
    judged = run.model
    if run.averaged is not None:
        judged = _swa_update(run.averaged, run.model, run.data.x[run.bn_idx], run.data.mean,
                             run.data.std, run.cfg.batch_size)
        rec["swa_models"] = int(run.averaged.n_averaged)
    has_val = run.data.x_val is not None
    if has_val:
        rec.update(_validate(judged, run.data))
    score = rec["val_acc"] if has_val else epoch
    rec["wall_s"] = time.time() - t0
    rec["cpu_s"] = time.process_time() - c0
    run.history.append(rec)
    improved = score > run.best_acc or not has_val  # no val split: keep the last epoch
    if improved:
        run.best_acc, run.best_epoch = score, epoch + 1
        run.best_state = {k: v.detach().clone() for k, v in judged.state_dict().items()}
    log(f"epoch {epoch + 1}/{run.cfg.epochs}: loss {rec['train_loss']:.4f} "
        f"acc {rec['train_acc']:.4f}"
        + (f" | val loss {rec['val_loss']:.4f} acc {rec['val_acc']:.4f}" if has_val else "")
        + f" | {rec['wall_s']:.0f} s wall, {rec['cpu_s']:.0f} s CPU"
        + (" *" if improved else ""))
    return improved


def _train_epoch(run: _Run, epoch: int, aug: dict, progress: bool) -> dict:
    """One pass over the shuffled training images; the epoch's record (loss, accuracy, lr)."""
    from tqdm.auto import tqdm

    cfg, data, model = run.cfg, run.data, run.model
    gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
    torch.manual_seed(cfg.seed * 100003 + epoch)  # dropout: same stream after a resume
    perm = torch.randperm(data.x.shape[0], generator=gen)
    head_only = epoch < cfg.freeze_epochs
    for name, p in model.named_parameters():
        p.requires_grad_(not head_only or name.startswith("head."))
    model.train()
    tot_loss, tot_ok, seen = 0.0, 0, 0
    bar = tqdm(total=run.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
               disable=not progress, mininterval=0.5, leave=False)
    for step in range(run.steps_per_epoch):
        idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        loss, logits = _train_step(run, idx, gen, aug)
        yb = data.y[idx]
        k = yb.shape[0]
        tot_loss += float(loss.detach()) * k
        tot_ok += int((logits.argmax(1) == yb).sum())
        seen += k
        bar.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{tot_ok / seen:.3f}",
                        refresh=False)
        bar.update(1)
    bar.refresh()  # the finished count is shown even when the epoch took under mininterval
    bar.close()
    return {"epoch": epoch + 1, "train_loss": tot_loss / seen, "train_acc": tot_ok / seen,
            "lr": run.opt.param_groups[0]["lr"]}


def _train_step(run: _Run, idx: torch.Tensor, gen: torch.Generator, aug: dict):
    """One optimiser step on the training rows ``idx``; returns (loss, logits)."""
    data = run.data
    xb = augment_batch(data.x[idx], gen, aug)
    xb = ((xb - data.mean) / data.std).contiguous(memory_format=torch.channels_last)
    logits = run.model(xb)
    loss = _loss(logits, idx, data, run.cfg)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.sched.step()
    return loss, logits


def _loss(logits, idx, data: _Data, cfg: TrainConfig):
    """Cross-entropy (against labels or distributions), mixed with distillation when asked."""
    target = data.y[idx] if data.soft_targets is None else data.soft_targets[idx]
    loss = F.cross_entropy(logits, target, weight=data.weight,
                           label_smoothing=cfg.label_smoothing)
    if data.teacher is not None:
        t = cfg.distill_temperature
        kd = F.kl_div(F.log_softmax(logits / t, dim=1), data.teacher[idx],
                      reduction="batchmean") * t * t
        loss = (1 - cfg.distill) * loss + cfg.distill * kd
    return loss


def _validate(model, data: _Data) -> dict:
    """``val_loss`` and ``val_acc`` of ``model`` on the validation split."""
    lv = predict_logits(model, data.x_val, data.mean, data.std)
    return {"val_loss": float(F.cross_entropy(lv, data.y_val)),
            "val_acc": float((lv.argmax(1) == data.y_val).float().mean())}


def _save_checkpoints(run: _Run, out: Path, meta: dict, epoch: int, improved: bool) -> None:
    """Write ``best.pt`` (when ``improved``), ``last.pt`` and ``history.jsonl`` in ``out``."""
    if improved:
        _atomic_save(dict(meta, model=run.best_state, epoch=epoch + 1, val_acc=run.best_acc,
                          history=run.history), out / "best.pt")
    swa = {"swa_state": run.averaged.state_dict()} if run.averaged is not None else {}
    _atomic_save(dict(meta, model=run.model.state_dict(), optimizer=run.opt.state_dict(),
                      scheduler=run.sched.state_dict(), epoch=epoch, best_val_acc=run.best_acc,
                      best_epoch=run.best_epoch, history=run.history, **swa),
                 out / "last.pt")
    with open(out / "history.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in run.history)


def read_checkpoint(path) -> dict:
    """The dict of a ``best.pt``/``last.pt`` file, read as tensors and plain data only.

    ``torch.load(..., weights_only=True)``: no object of the file is unpickled beyond
    tensors, containers, strings and numbers, so a tampered file cannot run code.

    Parameters
    ----------
    path : path
        The checkpoint file.

    Returns
    -------
    dict
        The checkpoint: ``model`` (state dict), ``config``, ``classes``, ``mean``, ``std``,
        ``epochs``, ``history``...

    Raises
    ------
    ModelError
        The file holds other objects (unpickling them could run code), or is not a
        checkpoint at all.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (a foreign, truncated or unsafe file)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise ModelError(f"{path}: holds objects other than tensors and plain data "
                             f"({found.group(1)}); it is not loaded, as unpickling them "
                             "could run code") from None
        raise ModelError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None


def _targets(y, n_classes):
    """(soft targets or None, class indices) of integer labels or (N, C) distributions."""
    arr = np.asarray(y)
    if arr.ndim == 2:
        if arr.shape[1] != n_classes:
            raise DataError(f"target distributions with {arr.shape[1]} columns for "
                            f"{n_classes} classes")
        if (arr < 0).any() or not np.allclose(arr.sum(axis=1), 1.0, atol=1e-3):
            raise DataError("target distributions must be non-negative rows summing to 1")
        soft = torch.as_tensor(arr, dtype=torch.float32)
        return soft, soft.argmax(1)
    return None, torch.as_tensor(arr, dtype=torch.long)


def _swa_update(averaged, model, x_bn, mean, std, batch_size):
    """Add ``model`` to the running average; recompute the average's BN statistics.

    Returns the averaged network itself (a :class:`FerNet`), in eval mode.
    """
    averaged.update_parameters(model)
    return recompute_bn(averaged.module, x_bn, mean, std, batch_size=batch_size)


def recompute_bn(net, x, mean: float, std: float, *, batch_size: int = 128):
    """Batch-norm statistics of ``net`` recomputed on (N, 1, H, W) float [0, 1] images.

    Needed after weights are averaged: the average of the members' statistics is not the
    statistics of the averaged network. Returns ``net`` in eval mode.
    """
    from torch.optim.swa_utils import update_bn

    batches = (((x[i:i + batch_size] - mean) / std).contiguous(
        memory_format=torch.channels_last) for i in range(0, x.shape[0], batch_size))
    with torch.no_grad():
        update_bn(batches, net)
    net.eval()
    return net


def load_checkpoint(path):
    """(model in eval mode, checkpoint dict) from a ``best.pt``/``last.pt`` file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint")
    ck = read_checkpoint(path)
    model = build_model(ck["config"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    model.load_state_dict(state)
    model.eval()
    return model, ck


def checkpoint_size(ck) -> tuple[int, int]:
    """The (height, width) of the crops checkpoint ``ck`` was trained on.

    Read from its ``size``; a checkpoint that records none was trained on 48x48 crops.
    """
    return tuple(int(v) for v in ck.get("size", (48, 48)))


def default_lr(transfer: bool) -> float:
    """Peak learning rate when none is given: 1e-3 to fine-tune a checkpoint, 3e-3 from scratch."""
    return 1e-3 if transfer else 3e-3


def start_from(ck, classes=None):
    """(initial state, (mean, std), model config) to continue or fine-tune checkpoint ``ck``.

    The head is kept only when ``classes`` equals the checkpoint's class list; otherwise it
    is left out and ``fit`` starts a fresh one (transfer learning). The configuration has
    no ``n_classes`` (``fit`` sets it from its own classes).
    """
    state = ck["model"]
    if classes is None or list(ck["classes"]) != list(classes):
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    config = {k: v for k, v in ck["config"].items() if k != "n_classes"}
    return state, (ck["mean"], ck["std"]), config


def ensemble_logits(paths, *xs, classes=None, flip: bool = True, each=None):
    """Mean logits of the checkpoints ``paths`` on each of ``xs`` (e.g. a distillation teacher).

    ``xs``: (N, 1, H, W) float tensors in [0, 1]; each checkpoint applies its own
    normalisation, with flip averaging when ``flip``. ``classes``: the class list the
    checkpoints must have. ``each(path, logits)`` is called per checkpoint with its logits
    on every x (e.g. to log each teacher's accuracy). Returns one tensor per x.
    """
    if not paths:
        raise ConfigError("no checkpoints to average")
    sums = [0] * len(xs)
    for path in paths:
        model, ck = load_checkpoint(path)
        if classes is not None and list(ck["classes"]) != list(classes):
            raise ConfigError(f"{path}: a model of the classes {', '.join(ck['classes'])}; "
                              f"the data has {', '.join(classes)}")
        logits = [predict_logits(model, x, ck["mean"], ck["std"], flip=flip) for x in xs]
        if each is not None:
            each(path, logits)
        sums = [s + lo for s, lo in zip(sums, logits, strict=True)]
    return [s / len(paths) for s in sums]


def split_for_training(ds, val_fraction: float = 0.1, seed: int = 0):
    """(train_idx, val_idx, test_idx) of a Dataset: its own splits, or a held-out part of train.

    Without a ``val`` split, ``val_fraction`` of the training rows (subject-grouped when the
    dataset has subjects) is held out for checkpoint selection.
    """
    splits = np.asarray(ds.splits)
    test = np.flatnonzero(splits == "test")
    train = np.flatnonzero((splits == "train") | (splits == ""))
    val = np.flatnonzero(splits == "val")
    if len(val) == 0 and val_fraction > 0 and len(train) >= 10:
        rng = np.random.default_rng(seed)
        if ds.subjects is not None:
            subj = np.unique(np.asarray(ds.subjects)[train])
            held = set(rng.permutation(subj)[:max(1, round(len(subj) * val_fraction))])
            is_val = np.array([s in held for s in np.asarray(ds.subjects)[train]])
        else:
            is_val = np.zeros(len(train), bool)
            is_val[rng.permutation(len(train))[:max(1, round(len(train) * val_fraction))]] \
                = True
        train, val = train[~is_val], train[is_val]
    if len(train) == 0:
        raise DataError("no training images (need a 'train' split or unsplit images)")
    return train, val, test


def train_on_dataset(ds, out_dir, *, epochs: int = 20, init_from=None, teachers=(),
                     targets: str = "majority", log=print, progress: bool = True,
                     score=None, **fit_kwargs) -> dict:
    """Train on a :class:`~classicfer.datasets.Dataset` and score its test split.

    Parameters
    ----------
    ds : Dataset
        Same-size grayscale crops (an (N, H, W) array) with their splits: ``train`` to fit,
        ``val`` (or a held-out part of train, :func:`split_for_training`) to pick the best
        epoch, ``test`` to score once.
    out_dir : path
        The run's folder; checkpoints go to ``out_dir/checkpoints/{last,best}.pt``
        (resumable) and ``history.jsonl``.
    epochs : int
        Epochs of the schedule.
    init_from : path, optional
        A checkpoint to start from (transfer learning: its network configuration and input
        normalisation are kept; a fresh head when the classes differ).
    teachers : sequence of paths
        Checkpoints of the same classes whose mean flip-averaged logits on the training
        images are distilled into the model (``distill`` weight, 0.5 unless given).
    targets : {"majority", "votes"}
        Train on the labels, or on the annotators' vote distributions of a dataset with
        ``votes`` (FER+; Barsoum et al. 2016's "probability" mode); validation and test are
        still scored against the labels.
    log, progress
        As in :func:`fit`.
    score : callable, optional
        ``score(y_true, y_pred)``: the metric record of the test split, from class names
        (``train-cnn`` passes :func:`classicfer.evaluation.split_metrics`: ``split``, ``n``,
        ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``per_class``); without it the
        test split is not scored.
    **fit_kwargs
        Passed to :func:`fit` (fields of :class:`TrainConfig`, ``resume``, ``stop_after``...).

    Returns
    -------
    dict
        ``model`` (the best epoch, eval mode), ``metrics`` (``best_epoch``,
        ``val_accuracy``, ``n_train``, ``n_val``, ``n_test``, ``cpu_s``, then the test
        split's scores), and what an export of the model needs: ``classes``, ``mean``,
        ``std``, ``size`` (H, W), ``name``, ``training`` (the record for the model folder's
        sidecar) and ``check_images`` (up to 64 crops, of the test split when there is one,
        for a parity check). Writing the model folder is the caller's step
        (:func:`classicfer.export.export_model`; ``classicfer train-cnn`` does it).
    """
    if not isinstance(ds.images, np.ndarray) or ds.images.ndim != 3:
        raise DataError("the CNN needs same-size grayscale crops (an (N, H, W) array); "
                        "crop and resize the faces first")
    classes = ds.classes
    y = np.array([classes.index(c) for c in ds.labels])
    tr, va, te = split_for_training(ds, seed=fit_kwargs.get("seed", 0))
    y_fit = _training_targets(ds, targets, classes, tr, y)
    init_state = None
    if init_from:  # other classes: a fresh head
        init_state, norm, config = start_from(load_checkpoint(init_from)[1], classes)
        fit_kwargs.setdefault("model_config", config)
        fit_kwargs.setdefault("norm", norm)
    out = Path(out_dir)
    t_cpu = time.process_time()
    x_tr = to_tensor(ds.images[tr])
    training = {"epochs": epochs, "dataset": ds.name, "targets": targets}
    if teachers and fit_kwargs.setdefault("distill", 0.5) > 0:  # weight 0: no teacher needed
        fit_kwargs["teacher_logits"] = ensemble_logits(list(teachers), x_tr, classes=classes)[0]
        training["distillation"] = {"teachers": [str(t) for t in teachers],
                                    "weight": fit_kwargs["distill"],
                                    "temperature": fit_kwargs.get("distill_temperature", 2.0)}
    res = fit(x_tr, y_fit, ds.images[va] if len(va) else None,
              y[va] if len(va) else None, classes=classes, epochs=epochs,
              out_dir=out / "checkpoints", init_state=init_state, log=log, progress=progress,
              **fit_kwargs)
    model = res["model"]
    metrics = {"best_epoch": res["best_epoch"], "val_accuracy": res["best_val_acc"],
               "n_train": len(tr), "n_val": len(va), "n_test": len(te),
               "cpu_s": time.process_time() - t_cpu}
    if len(te) and score is not None:
        pred = predict_logits(model, to_tensor(ds.images[te]), res["mean"], res["std"]) \
            .argmax(1).numpy()
        names = np.asarray(classes)
        metrics.update(score(names[y[te]], names[pred]))
    return {"model": model, "metrics": metrics, "classes": classes, "mean": res["mean"],
            "std": res["std"], "size": tuple(ds.images.shape[1:]), "name": f"{ds.name}-cnn",
            "training": {**training, "best_epoch": res["best_epoch"],
                         "history": res["history"]},
            "check_images": ds.images[te[:64]] if len(te) else ds.images[tr[:64]]}


def _training_targets(ds, targets, classes, rows, y):
    """Class indices (``majority``) or vote distributions (``votes``) of the training rows."""
    if targets == "majority":
        return y[rows]
    if targets != "votes":
        raise ConfigError(f"targets must be 'majority' or 'votes', got {targets!r}")
    if getattr(ds, "votes", None) is None:
        raise ConfigError(f"targets 'votes' needs a dataset with annotators' votes (FER+, "
                          f"format ferplus); {ds.name} has none")
    from ..datasets._ferplus import VOTE_EMOTIONS, vote_distribution

    other = [c for c in classes if c not in VOTE_EMOTIONS]
    if other:
        raise ConfigError(f"targets 'votes': no vote column for the class {other[0]!r}")
    return vote_distribution(np.asarray(ds.votes)[rows], classes)
