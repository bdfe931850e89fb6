"""The standard Hugging Face route, timed on this machine: the anchor our defaults must beat.

    python -m benchmarks.anchor_hf_trainer [--seeds 0 1] [--recipe lora|full]

transformers.Trainer + peft LoRA (r=8, alpha=32, dropout 0.1, query+value; lr 1e-3, 5
epochs) or full fine-tuning (lr 5e-5, 3 epochs), all-MiniLM-L6-v2, TweetEval emotion,
max_length 64, batch 16, the best epoch by val macro-F1, then test macro-F1. Prints one
row per seed and writes benchmarks/results/anchor_hf_trainer_<recipe>.json. Needs peft.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import torch

from benchmarks.common import parser, write_result

RECIPES = {"lora": {"lr": 1e-3, "epochs": 5}, "full": {"lr": 5e-5, "epochs": 3}}


def macro_f1(pred: np.ndarray, gold: np.ndarray, num_labels: int) -> float:
    from torchmetrics.functional.classification import multiclass_f1_score

    return float(multiclass_f1_score(torch.tensor(pred), torch.tensor(gold), num_labels, average="macro"))


def train_one(recipe: str, seed: int, data, model_dir) -> dict:
    import peft
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(seed)
    n = len(data.label_names)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def encode(split: str) -> Dataset:
        ds = Dataset.from_dict({"text": list(data.splits[split]["text"]), "label": list(data.splits[split]["label"])})
        return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True,
                      remove_columns=["text"])

    train, val, test = encode("train"), encode("validation"), encode("test")
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=n)
    if recipe == "lora":
        model = peft.get_peft_model(model, peft.LoraConfig(
            r=8, lora_alpha=32, lora_dropout=0.1, target_modules=["query", "value"], task_type="SEQ_CLS"))
    settings = RECIPES[recipe]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, learning_rate=settings["lr"], num_train_epochs=settings["epochs"],
            per_device_train_batch_size=16, per_device_eval_batch_size=64, eval_strategy="epoch",
            save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
            metric_for_best_model="macro_f1", greater_is_better=True, seed=seed, report_to=[],
            use_cpu=True, disable_tqdm=True, logging_strategy="no")
        trainer = Trainer(
            model=model, args=args, train_dataset=train, eval_dataset=val,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=lambda p: {"macro_f1": macro_f1(p.predictions.argmax(-1), p.label_ids, n)})
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        prediction = trainer.predict(test)
    return {"seed": seed, "train_seconds": seconds,
            "test_macro_f1": macro_f1(prediction.predictions.argmax(-1), prediction.label_ids, n)}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="lora")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--dataset", default="tweet_eval/emotion")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from tweetcls.datamodules.sources import load_labelled_data
    from tweetcls.core.resolve import resolve_model

    data, model_dir = load_labelled_data(args.dataset), resolve_model(args.model)
    rows = [train_one(args.recipe, seed, data, model_dir) for seed in args.seeds]
    print(f"HF Trainer + {'peft LoRA' if args.recipe == 'lora' else 'full fine-tuning'}, {RECIPES[args.recipe]}")
    print("| seed | test macro-F1 | train s |\n|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['test_macro_f1']:.4f} | {r['train_seconds']:.0f} |")
    mean_f1 = statistics.mean(r["test_macro_f1"] for r in rows)
    mean_s = statistics.mean(r["train_seconds"] for r in rows)
    print(f"| mean | {mean_f1:.4f} | {mean_s:.0f} |")
    write_result(f"anchor_hf_trainer_{args.recipe}", args, {"runs": rows, "mean_test_macro_f1": mean_f1,
                                                             "mean_train_seconds": mean_s})


if __name__ == "__main__":
    main()
