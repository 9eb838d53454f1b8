"""Training loop for :class:`~classicfer.cnn_head.model.FerNet` (needs torch).

Everything runs on batch tensors: the images are converted to one float
tensor once, and augmentation (rotation, zoom, shift, horizontal flip,
random erasing) is a single ``affine_grid``/``grid_sample`` call per batch.
Checkpoints are written atomically every epoch (``last.pt``: model,
optimiser, schedule, epoch, RNG-free deterministic state, history) and the
best epoch on the validation split is kept in ``best.pt``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..exceptions import ConfigError, DataError
from .model import build_model, count_flops, count_params

DEFAULT_MODEL = {"widths": (16, 32, 64, 128), "attention": True, "dropout": 0.3}

DEFAULT_AUG = {"rotate": 15.0, "zoom": 0.15, "shift": 0.10, "flip": True, "erase": 0.25}


def set_threads(n: int | None = None) -> int:
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


def augment_batch(x: torch.Tensor, gen: torch.Generator, aug: dict) -> torch.Tensor:
    """Random affine (rotation, zoom, shift, flip) + random erasing, on a whole batch."""
    n = x.shape[0]
    u = lambda: torch.rand(n, generator=gen) * 2 - 1
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


def fit(x_train, y_train, x_val=None, y_val=None, *, classes, epochs: int = 20,
        out_dir=None, model_config: dict | None = None, batch_size: int = 128,
        lr: float = 3e-3, weight_decay: float = 0.05, label_smoothing: float = 0.1,
        warmup: float = 0.15, seed: int = 0, aug: dict | None = None, init_state=None,
        freeze_epochs: int = 0, resume: bool = False, stop_after: int | None = None,
        grow: bool = False, swa: bool = False, teacher_logits=None,
        distill: float = 0.0, distill_temperature: float = 2.0,
        threads: int | None = None, class_weight=None,
        progress: bool = True, log=print, norm: tuple | None = None) -> dict:
    """Train a :class:`FerNet` and return the best model (on ``x_val``) and its history.

    Parameters
    ----------
    x_train, x_val : (N, H, W) uint8 arrays or (N, 1, H, W) float tensors in [0, 1]
    y_train : int array of class indices into ``classes``, or an (N, n_classes) float array
        of target distributions (e.g. FER+ annotators' votes; Barsoum et al. 2016's
        "probability" mode: cross-entropy against the distribution).
    y_val : int array of class indices into ``classes``
    class_weight : (n_classes,) weights of the classes in the loss, or None.
    epochs : total number of epochs of the one-cycle (warm-up + cosine) schedule.
    out_dir : folder for ``last.pt`` (resumable), ``best.pt`` and ``history.jsonl``.
    init_state : a state dict to start from (transfer learning); a head of a different
        size is replaced.
    freeze_epochs : train only the head for that many epochs first (transfer learning).
    grow : let ``init_state`` come from a smaller network of the same family (e.g. one
        stage fewer): layers it holds with the same shapes are copied, the others keep
        their fresh initialisation.
    swa : stochastic weight averaging (Izmailov et al., 2018), meant for continuing from
        ``init_state``: the learning rate follows one cosine cycle per epoch (``lr`` down
        to ``lr / 100``, :class:`torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`),
        the weights at the end of every cycle are averaged
        (:class:`torch.optim.swa_utils.AveragedModel`), batch-norm statistics of the
        average are recomputed on training images (:func:`torch.optim.swa_utils.update_bn`)
        and the *average* is what is validated, checkpointed and returned.
    teacher_logits : (N, n_classes) logits of a teacher (e.g. an ensemble) on ``x_train``,
        for knowledge distillation (Hinton et al., 2015): the loss becomes
        ``(1 - distill) * cross-entropy + distill * T**2 * KL(teacher_T || student_T)``
        with both sides softened by ``T = distill_temperature``.
    distill : weight of the distillation term, in [0, 1] (needs ``teacher_logits``).
    resume : continue from ``out_dir/last.pt`` (same schedule).
    stop_after : run at most that many epochs in this call (resume later with ``resume``).
    norm : (mean, std) of the input; computed on ``x_train`` when None.

    Returns
    -------
    dict with ``model`` (best epoch, eval mode), ``best_epoch``, ``best_val_acc``,
    ``history`` (list of per-epoch dicts), ``mean``, ``std``, ``classes``, ``config``.
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    set_threads(threads)
    aug = dict(DEFAULT_AUG if aug is None else aug)
    xt = x_train if isinstance(x_train, torch.Tensor) else to_tensor(x_train)
    targets, yt = _targets(y_train, len(classes))
    weight = None if class_weight is None else torch.as_tensor(
        np.asarray(class_weight, dtype=np.float32))
    if weight is not None and (weight.shape != (len(classes),) or float(weight.min()) <= 0):
        raise ConfigError(f"class_weight must hold {len(classes)} positive numbers")
    has_val = x_val is not None and len(x_val) > 0
    if has_val:
        xv = x_val if isinstance(x_val, torch.Tensor) else to_tensor(x_val)
        yv = torch.as_tensor(np.asarray(y_val), dtype=torch.long)
    if xt.shape[0] != yt.shape[0] or xt.shape[0] == 0:
        raise DataError(f"{xt.shape[0]} training images for {yt.shape[0]} labels")
    n_classes = len(classes)
    if int(yt.max()) >= n_classes or int(yt.min()) < 0:
        raise DataError(f"labels must be in 0..{n_classes - 1}")
    if not 0.0 <= distill <= 1.0:
        raise ConfigError(f"distill must be in [0, 1], got {distill}")
    soft, distill_setting = None, ([distill, distill_temperature] if distill else None)
    if distill > 0:
        if teacher_logits is None:
            raise ConfigError("distill > 0 needs teacher_logits")
        if distill_temperature <= 0:
            raise ConfigError(f"distill_temperature must be > 0, got {distill_temperature}")
        tl = torch.as_tensor(np.asarray(teacher_logits), dtype=torch.float32)
        if tl.shape != (xt.shape[0], n_classes):
            raise DataError(f"teacher_logits of shape {tuple(tl.shape)}, expected "
                            f"({xt.shape[0]}, {n_classes})")
        soft = F.softmax(tl / distill_temperature, dim=1)
    if norm is None:
        mean, std = float(xt.mean()), float(xt.std())
    else:
        mean, std = map(float, norm)

    torch.manual_seed(seed)
    config = dict(DEFAULT_MODEL, **(model_config or {}))
    config["n_classes"] = n_classes
    config["widths"] = tuple(config["widths"])
    model = build_model(config)
    if init_state is not None:
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
    model = model.to(memory_format=torch.channels_last)

    steps_per_epoch = math.ceil(xt.shape[0] / batch_size)
    total = steps_per_epoch * epochs
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    if swa:
        from torch.optim.swa_utils import AveragedModel

        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=steps_per_epoch, eta_min=lr / 100)
        averaged = AveragedModel(model)
        # BN statistics of the average: a fixed sample of un-augmented training images
        bn_idx = torch.randperm(xt.shape[0], generator=torch.Generator().manual_seed(seed))
        bn_idx = bn_idx[:min(xt.shape[0], 8192)]
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=total, pct_start=warmup, anneal_strategy="cos",
            div_factor=20.0, final_div_factor=200.0)

    out = Path(out_dir) if out_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    start_epoch, best_acc, best_epoch, history = 0, -1.0, -1, []
    best_state = None
    if resume:
        if not out or not (out / "last.pt").is_file():
            raise ConfigError(f"--resume: no checkpoint {out}/last.pt to resume from")
        ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        if ck["config"] != config or ck["epochs"] != epochs or ck["classes"] != list(classes):
            raise ConfigError("--resume: the checkpoint was made with a different model, class "
                              "list or epoch count; use the same options or start afresh")
        if ck.get("distill") != distill_setting:
            raise ConfigError("--resume: the checkpoint was made with other distillation "
                              "settings; use the same options or start afresh")
        if bool(ck.get("swa")) != swa:
            raise ConfigError("--resume: the checkpoint was made " + ("without" if swa else "with")
                              + " --swa; use the same options or start afresh")
        model.load_state_dict(ck["model"])
        if swa:
            averaged.load_state_dict(ck["swa_state"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch, best_acc, best_epoch = ck["epoch"] + 1, ck["best_val_acc"], ck["best_epoch"]
        history, mean, std = ck["history"], ck["mean"], ck["std"]
        if (out / "best.pt").is_file():
            best_state = torch.load(out / "best.pt", map_location="cpu",
                                    weights_only=False)["model"]
        log(f"resumed from {out / 'last.pt'} at epoch {start_epoch + 1}/{epochs}")

    meta = {"config": config, "classes": list(classes), "mean": mean, "std": std, "epochs": epochs,
            "size": list(xt.shape[-2:])}
    if swa:
        meta["swa"] = True
    if distill_setting:
        meta["distill"] = distill_setting
    log(f"model: {count_params(model):,} parameters, "
        f"{count_flops(model, tuple(xt.shape[-2:])) / 1e6:.1f} M multiply-adds; "
        f"{xt.shape[0]} train / {xv.shape[0] if has_val else 0} val images; "
        f"{torch.get_num_threads()} threads")
    from tqdm.auto import tqdm

    end_epoch = epochs if not stop_after else min(epochs, start_epoch + int(stop_after))
    for epoch in range(start_epoch, end_epoch):
        t0, c0 = time.time(), time.process_time()
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        torch.manual_seed(seed * 100003 + epoch)  # dropout: same stream after a resume
        perm = torch.randperm(xt.shape[0], generator=gen)
        head_only = epoch < freeze_epochs
        for name, p in model.named_parameters():
            p.requires_grad_(not head_only or name.startswith("head."))
        model.train()
        tot_loss, tot_ok, seen = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not progress, mininterval=2.0, leave=False)
        for step in bar:
            idx = perm[step * batch_size:(step + 1) * batch_size]
            xb = augment_batch(xt[idx], gen, aug)
            xb = ((xb - mean) / std).contiguous(memory_format=torch.channels_last)
            yb = yt[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb if targets is None else targets[idx],
                                   weight=weight, label_smoothing=label_smoothing)
            if soft is not None:
                t = distill_temperature
                kd = F.kl_div(F.log_softmax(logits / t, dim=1), soft[idx],
                              reduction="batchmean") * t * t
                loss = (1 - distill) * loss + distill * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            k = yb.shape[0]
            tot_loss += float(loss.detach()) * k
            tot_ok += int((logits.argmax(1) == yb).sum())
            seen += k
            bar.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{tot_ok / seen:.3f}")
        bar.close()
        rec = {"epoch": epoch + 1, "train_loss": tot_loss / seen, "train_acc": tot_ok / seen,
                   "lr": opt.param_groups[0]["lr"]}
        judged = model
        if swa:
            judged = _swa_update(averaged, model, xt[bn_idx], mean, std, batch_size)
            rec["swa_models"] = int(averaged.n_averaged)
        if has_val:
            lv = predict_logits(judged, xv, mean, std)
            rec["val_loss"] = float(F.cross_entropy(lv, yv))
            rec["val_acc"] = float((lv.argmax(1) == yv).float().mean())
            score = rec["val_acc"]
        else:
            score = epoch
        rec["wall_s"] = time.time() - t0
        rec["cpu_s"] = time.process_time() - c0
        history.append(rec)
        improved = score > best_acc or not has_val  # no val split: keep the last epoch
        if improved:
            best_acc, best_epoch = score, epoch + 1
            best_state = {k: v.detach().clone() for k, v in judged.state_dict().items()}
        log(f"epoch {epoch + 1}/{epochs}: loss {rec['train_loss']:.4f} acc {rec['train_acc']:.4f}"
            + (f" | val loss {rec['val_loss']:.4f} acc {rec['val_acc']:.4f}" if has_val else "")
            + f" | {rec['wall_s']:.0f} s wall, {rec['cpu_s']:.0f} s CPU"
            + (" *" if improved else ""))
        if out:
            if improved:
                _atomic_save(dict(meta, model=best_state, epoch=epoch + 1, val_acc=best_acc,
                                  history=history), out / "best.pt")
            _atomic_save(dict(meta, model=model.state_dict(), optimizer=opt.state_dict(),
                              scheduler=sched.state_dict(), epoch=epoch, best_val_acc=best_acc,
                              best_epoch=best_epoch, history=history,
                              **({"swa_state": averaged.state_dict()} if swa else {})),
                         out / "last.pt")
            with open(out / "history.jsonl", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in history)

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {"model": model, "best_epoch": best_epoch, "best_val_acc": best_acc if has_val else None,
                "history": history, "mean": mean, "std": std, "classes": list(classes), "config": config}


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


def average_weights(models, x_bn, mean: float, std: float):
    """A uniform "model soup": the parameter-wise mean of same-shaped networks.

    The members must share an architecture (and, to be useful, a common starting point,
    e.g. continuations of one checkpoint). Batch-norm statistics are recomputed on
    ``x_bn`` ((N, 1, H, W) float [0, 1]). Returns a new network in eval mode.
    """
    from torch.optim.swa_utils import AveragedModel

    models = list(models)
    if len(models) < 2:
        raise ConfigError("averaging needs at least two networks")
    if any(m.config != models[0].config for m in models):
        raise ConfigError("the networks to average have different configurations")
    averaged = AveragedModel(models[0])
    for m in models:
        averaged.update_parameters(m)
    return recompute_bn(averaged.module, x_bn, mean, std)


def load_checkpoint(path):
    """(model in eval mode, checkpoint dict) from a ``best.pt``/``last.pt`` file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ck["config"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    model.load_state_dict(state)
    model.eval()
    return model, ck


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
        sums = [s + lo for s, lo in zip(sums, logits)]
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
                     score=None, run: dict | None = None, **fit_kwargs) -> dict:
    """Train on a :class:`~classicfer.datasets.Dataset`, export, and evaluate its test split.

    ``teachers``: checkpoints of the same classes whose mean flip-averaged logits on the
    training images are distilled into the model (``distill`` weight, 0.5 unless given).
    ``targets``: ``"majority"`` trains on the labels; ``"votes"`` on the annotators' vote
    distributions of a dataset with ``votes`` (FER+; Barsoum et al. 2016's "probability"
    mode), validation and test still scored against the labels.
    ``score(y_true, y_pred)``: the metric record of the test split, from class names
    (``train-cnn`` passes :func:`classicfer.evaluation.split_metrics`: ``split``, ``n``,
    ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``per_class``); without it the test
    split is not scored. ``run``: a run record (:func:`classicfer.provenance.run_record`)
    written to ``out_dir/run.json``.
    Writes ``out_dir/checkpoints/{last,best}.pt`` (resumable), ``out_dir/model/`` (ONNX +
    sidecar; its ``metrics`` are those of ``metrics.json`` but ``cpu_s``), and
    ``out_dir/metrics.json``. Returns the metrics dict.
    """
    from ..export._cnn import cnn_parity, export_model

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
    size = tuple(ds.images.shape[1:])
    model_dir = export_model(model, out / "model", classes=classes, mean=res["mean"],
                             std=res["std"], size=size, name=f"{ds.name}-cnn",
                             training={**training, "best_epoch": res["best_epoch"],
                                       "history": res["history"]},
                             metrics={k: v for k, v in metrics.items() if k != "cpu_s"})
    sample = ds.images[te[:64]] if len(te) else ds.images[tr[:64]]
    metrics["onnx_parity_max_abs_diff"] = cnn_parity(model, model_dir, sample)["max_abs_diff"]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if run is not None:
        (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    return metrics


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
