"""Adapting the e5 encoder to this domain: a small LoRA adapter learned from the labelled rows.

The recipe is SetFit's first stage (contrastive fine-tuning of a sentence encoder on pairs built
from labelled rows), run as a plain torch loop so it needs neither `datasets` nor a trainer:

- every step takes `batch_texts` distinct rows and all pairs among them;
- a pair's target similarity is the share of label fields (themes, doelgroepen) in which the two
  rows have a label in common: 0, 0.5 or 1;
- the loss is the squared gap between the pair's cosine and its target, each target value
  weighing the same in total (few pairs share labels in both fields);
- only low-rank adapters (`peft` LoRA) on the attention and feed-forward layers learn; the word
  embeddings and every base weight stay frozen, so the artifact is a few MB and can be committed.

`fit_adapter` learns one adapter, `save_adapter` writes it as a folder (peft's files plus
`ADAPTER.json`: its data, taxonomy and base encoder hashes and the settings it was made with).
`models.embed.AdaptedE5Encoder` loads such a folder on top of the converted e5.
`evaluate_adaptation` is the honest protocol: the adapter is learned inside each training fold
only, and the same stages are fitted on frozen and adapted vectors of the same folds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pipeline.core.config import FinetuneConfig, Settings, load_taxonomy
from pipeline.models.embed import ADAPTER_META
from pipeline.models.encoder_build import converted_folder
from pipeline.training.cv import blocks_from_settings, outer_folds
from pipeline.training.data import load_labelled
from pipeline.training.stages import STAGES, baseline_stages

FIELDS = ("themes", "doelgroepen")


def pair_targets(label_matrices: Sequence[np.ndarray]) -> np.ndarray:
    """(n, n) target similarity: the share of fields in which rows i and j share a label."""
    shares = [(np.asarray(Y, dtype=float) @ np.asarray(Y, dtype=float).T > 0).astype(float)
              for Y in label_matrices]
    return np.mean(shares, axis=0)


def _balanced_weights(targets: np.ndarray) -> np.ndarray:
    """Pair weights giving every distinct target value the same total weight."""
    weights = np.zeros_like(targets, dtype=float)
    values = np.unique(targets)
    for value in values:
        mask = targets == value
        weights[mask] = 1.0 / (mask.sum() * len(values))
    return weights


def fit_adapter(base_folder: str | Path, texts: Sequence[str], label_matrices: Sequence[np.ndarray],
                config: FinetuneConfig, *, prefix: str = "query: ",
                log: Callable[[str], None] = lambda message: None):
    """Learn a LoRA adapter for the e5 BERT in `base_folder` on `texts` and their label matrices.

    Returns the peft model (base weights frozen, adapters trained)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_folder), local_files_only=True)
    bert = AutoModel.from_pretrained(str(base_folder), local_files_only=True, add_pooling_layer=False)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules), bias="none")
    model = get_peft_model(bert, lora)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    targets_all = pair_targets(label_matrices)
    texts = [prefix + t for t in texts]
    n = len(texts)
    steps = 0
    started = time.perf_counter()
    for epoch in range(config.epochs):
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, config.batch_texts):
            batch = order[start:start + config.batch_texts]
            if len(batch) < 2:
                continue
            encoded = tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                max_length=config.max_tokens, return_tensors="pt")
            hidden = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            upper = np.triu_indices(len(batch), k=1)
            target = targets_all[np.ix_(batch, batch)][upper]
            weight = torch.tensor(_balanced_weights(target), dtype=torch.float32)
            cosine = (pooled @ pooled.T)[torch.tensor(upper[0]), torch.tensor(upper[1])]
            loss = (weight * (cosine - torch.tensor(target, dtype=torch.float32)) ** 2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            steps += 1
        log(f"fine-tune epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f} "
            f"({steps} steps, {time.perf_counter() - started:.0f} s)")
    model.eval()
    return model


def save_adapter(model, out_dir: str | Path, meta: dict) -> Path:
    """Write the adapter (peft's adapter_config.json + adapter_model.safetensors) and ADAPTER.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    config_file = out / "adapter_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    # peft records the base model's absolute local path; the base is named in ADAPTER.json instead.
    config["base_model_name_or_path"] = None
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    # peft's README is an empty model-card template naming that same local path; ADAPTER.json
    # (and evaluation.json, when written) are this adapter's card.
    (out / "README.md").unlink(missing_ok=True)
    (out / ADAPTER_META).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def adapter_meta(base_folder: Path, data, taxonomy, config: FinetuneConfig, **extra) -> dict:
    return {"base_encoder": base_folder.name, "data_sha256": data.sha256,
            "taxonomy_sha256": taxonomy.sha256, "rows": len(data.rows),
            "fields": list(FIELDS), "settings": _recorded(config), **extra}


def _recorded(config: FinetuneConfig) -> dict:
    """The settings as JSON: what the adapter was learned with (its output folder is not one)."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items() if k != "adapters_dir"}


def _label_matrices(rows, taxonomy, idx=None):
    out = []
    for stage in STAGES:
        if stage.name in FIELDS:
            Y = stage.targets(rows, taxonomy)
            out.append(Y if idx is None else Y[idx])
    return out


def _adapted_settings(settings: Settings, adapter_dir: Path) -> Settings:
    embed = dataclasses.replace(settings.embed, encoder="e5-st-ft", model_path=str(adapter_dir))
    return dataclasses.replace(settings, embed=embed)


def _frozen_settings(settings: Settings) -> Settings:
    embed = dataclasses.replace(settings.embed, encoder="e5-st", model_path="")
    return dataclasses.replace(settings, embed=embed)


def evaluate_adaptation(settings: Settings, *, folds: int = 5, seed: int | None = None,
                        stage_names: Sequence[str] = ("themes", "doelgroepen", "kind"),
                        log: Callable[[str], None] = lambda message: None) -> dict:
    """Nested comparison of the frozen and the adapted encoder on the same outer folds.

    In each outer fold an adapter is learned on the training rows only; then every stage in
    `stage_names` and the e5 + logistic regression baseline are fitted on the training rows with
    frozen and with adapted vectors and predict the held-out rows (their own inner choices, such as
    thresholds, are made inside the training rows as always). Folds keep same-idea groups together
    as [train] split says. Returns pooled out-of-fold metrics per variant plus per-fold scores.
    """
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    data = load_labelled(Path(settings.paths.labelled), taxonomy, limits=settings.ingest)
    seed = settings.train.seed if seed is None else seed
    base = converted_folder(settings.embed.encoders_dir)
    ids = [i.id for i in data.initiatives]
    blocks = blocks_from_settings(settings, ids)
    stages = [s for s in STAGES if s.name in stage_names]
    baseline = [s for s in baseline_stages("e5-lr") if s.name in stage_names]
    targets = {s.name: s.targets(data.rows, taxonomy) for s in stages}
    stratify = [targets[s.name] for s in stages if s.stratify]
    variants = {f"{kind}/{design}": {s.name: np.zeros_like(targets[s.name]) for s in stages}
                for kind in ("frozen", "adapted") for design in ("ours", "e5-lr")}
    per_fold = []
    texts = data.texts
    X = np.empty(len(texts), dtype=object)
    X[:] = texts
    frozen = _frozen_settings(settings)
    timings = []
    with tempfile.TemporaryDirectory(prefix="finetune-") as tmp:
        for step, (_, train, test) in enumerate(outer_folds(stratify, folds, 1, seed, blocks), 1):
            started = time.perf_counter()
            model = fit_adapter(base, [texts[i] for i in train], _label_matrices(data.rows, taxonomy, train),
                                settings.finetune, prefix=settings.embed.prefix, log=log)
            folder = save_adapter(model, Path(tmp) / f"fold{step}", {"fold": step})
            del model
            timings.append(round(time.perf_counter() - started, 1))
            adapted = _adapted_settings(settings, folder)
            fold_scores = {}
            for kind, variant_settings in (("frozen", frozen), ("adapted", adapted)):
                for design, design_stages in (("ours", stages), ("e5-lr", baseline)):
                    for stage in design_stages:
                        estimator = stage.make(variant_settings, taxonomy, seed).fit(
                            list(X[train]), targets[stage.name][train])
                        pred = np.asarray(estimator.predict(list(X[test]))).reshape(
                            len(test), *targets[stage.name].shape[1:])
                        variants[f"{kind}/{design}"][stage.name][test] = pred
                        fold_scores[f"{kind}/{design}/{stage.name}"] = _headline(
                            stage.evaluate(targets[stage.name][test], pred, taxonomy))
            per_fold.append({"fold": step, "train_rows": len(train), "test_rows": len(test),
                             "fine_tune_seconds": timings[-1], "scores": fold_scores})
            log(f"fold {step}/{folds}: " + ", ".join(
                f"{k} {v}" for k, v in fold_scores.items() if k.endswith(("themes", "doelgroepen"))))
    pooled = {variant: {name: stage_evaluate(stages, name, targets[name], pred, taxonomy)
                        for name, pred in preds.items()}
              for variant, preds in variants.items()}
    return {"protocol": (f"{folds}-fold iterative-stratified outer CV, split {settings.train.split!r}, "
                         f"seed {seed}; the adapter is learned on each training fold only; frozen and "
                         "adapted stages fitted on the same folds; pooled out-of-fold predictions"),
            "rows": len(data.rows), "data_sha256": data.sha256, "taxonomy_sha256": taxonomy.sha256,
            "base_encoder": base.name, "settings": _recorded(settings.finetune),
            "pooled": pooled, "folds": per_fold, "fine_tune_seconds": timings}


def stage_evaluate(stages, name, Y, P, taxonomy) -> dict:
    stage = next(s for s in stages if s.name == name)
    return stage.evaluate(Y, P, taxonomy)


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("micro", "macro", "accuracy") if k in metrics}


def adaptation_wins(evaluation: dict, *, fields: Sequence[str] = FIELDS) -> bool:
    """True when the adapted encoder beats the frozen one for our stages on micro and macro F1 of
    every field (pooled out of fold), and does not lose kind accuracy."""
    frozen, adapted = evaluation["pooled"]["frozen/ours"], evaluation["pooled"]["adapted/ours"]
    for name in fields:
        for key in ("micro", "macro"):
            if adapted[name][key]["f1"] < frozen[name][key]["f1"]:
                return False
    if "kind" in frozen and adapted["kind"]["accuracy"] < frozen["kind"]["accuracy"]:
        return False
    return True


def comparison_table(evaluation: dict) -> str:
    """Markdown table of pooled out-of-fold F1 per design, and the folds the adapter won."""
    def f1(metrics, key):
        return metrics[key]["f1"]

    lines = ["| design | themes micro / macro F1 | doelgroepen micro / macro F1 | kind accuracy |",
             "|---|---|---|---|"]
    for variant, scores in evaluation["pooled"].items():
        cells = [f"{f1(scores[f], 'micro'):.3f} / {f1(scores[f], 'macro'):.3f}" for f in FIELDS]
        cells.append(f"{scores['kind']['accuracy']:.3f}" if "kind" in scores else "-")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    wins: dict[str, list[bool]] = {}
    for fold in evaluation.get("folds", []):
        for field in FIELDS:
            for key in ("micro", "macro"):
                adapted = fold["scores"][f"adapted/ours/{field}"]
                frozen = fold["scores"][f"frozen/ours/{field}"]
                wins.setdefault(f"{field} {key}", []).append(f1(adapted, key) > f1(frozen, key))
    if wins:
        lines += ["", "folds where adapted/ours beats frozen/ours: " + ", ".join(
            f"{k} {sum(v)}/{len(v)}" for k, v in wins.items())]
    return "\n".join(lines)


def fine_tune_release(settings: Settings, out_root: str | Path, *, evaluation: dict | None = None,
                      log: Callable[[str], None] = lambda message: None) -> Path:
    """Learn the adapter on all labelled rows and write it under `out_root/e5-ft-<hash>/`.

    The folder name is the hash of its weights, so a changed adapter never reuses cached vectors.
    `evaluation` (from `evaluate_adaptation`) is stored beside it as evaluation.json."""
    taxonomy = load_taxonomy(settings.paths.taxonomy)
    data = load_labelled(Path(settings.paths.labelled), taxonomy, limits=settings.ingest)
    base = converted_folder(settings.embed.encoders_dir)
    model = fit_adapter(base, data.texts, _label_matrices(data.rows, taxonomy), settings.finetune,
                        prefix=settings.embed.prefix, log=log)
    meta = adapter_meta(base, data, taxonomy, settings.finetune,
                        honest_comparison=None if evaluation is None else "evaluation.json",
                        adapted_beats_frozen=None if evaluation is None else adaptation_wins(evaluation))
    with tempfile.TemporaryDirectory(prefix="adapter-", dir=str(Path(out_root).parent)
                                     if Path(out_root).parent.exists() else None) as tmp:
        folder = save_adapter(model, Path(tmp) / "adapter", meta)
        digest = hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]
        final = Path(out_root) / f"e5-ft-{digest}"
        final.mkdir(parents=True, exist_ok=True)
        for file in folder.iterdir():
            (final / file.name).write_bytes(file.read_bytes())
    if evaluation is not None:
        (final / "evaluation.json").write_text(json.dumps(evaluation, indent=2, ensure_ascii=False)
                                               + "\n", encoding="utf-8")
    log(f"wrote adapter {final}")
    return final

