"""How much a frozen checkpoint's first token vs the mean of its tokens knows about a task.

    python -m experiments.pooling_probe [--model minilm-l6] [--dataset tweet_eval/emotion]
    python -m experiments.pooling_probe --dataset go_emotions --max-train-samples 20000
    python -m experiments.pooling_probe --model runs/RUN/model   # a fine-tuned encoder's features

Embeds train and test with the frozen encoder three ways (the [CLS] vector, BERT's pooler
on it, the masked mean of all tokens), fits a logistic-regression probe on train
(L-BFGS, standardized features) and prints test macro-F1 for each; writes
experiments/results/pooling_probe[-DATASET].json. This is why --pooling auto picks the mean for
sentence-transformers checkpoints. On multi-label data the probe is one sigmoid per label
(BCE) and test is scored at the threshold with the best val macro-F1, as train.py does: the
floor any fine-tuning run should clear.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics.functional.classification import multiclass_f1_score, multilabel_f1_score

from benchmarks.common import parser, write_result
from tweetcls.review.compare import model_label

EXPERIMENT_RESULTS = Path(__file__).with_name("results")


@torch.inference_mode()
def embed(model, tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    out = {"cls": [], "pooler": [], "mean": []}
    for start in range(0, len(texts), 128):
        batch = tokenizer(texts[start:start + 128], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        result = model(**batch)
        hidden, mask = result.last_hidden_state, batch["attention_mask"].unsqueeze(-1).float()
        out["cls"].append(hidden[:, 0])
        if result.pooler_output is not None:
            out["pooler"].append(result.pooler_output)
        out["mean"].append((hidden * mask).sum(1) / mask.sum(1))
    return {k: torch.cat(v) for k, v in out.items() if v}


def fit_linear(train_x: torch.Tensor, train_y: torch.Tensor, num_labels: int, multi_label: bool) -> torch.nn.Linear:
    torch.manual_seed(0)
    linear = torch.nn.Linear(train_x.shape[1], num_labels)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=300)
    loss_fn = torch.nn.functional.binary_cross_entropy_with_logits if multi_label else torch.nn.functional.cross_entropy

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(linear(train_x), train_y) + 1e-3 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear


def probe(train: tuple, val: tuple, test: tuple, label_names: list[str], multi_label: bool) -> float:
    """Test macro-F1 of a linear probe fitted on standardized train features."""
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = train, val, test
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, val_x, test_x = (train_x - mu) / sd, (val_x - mu) / sd, (test_x - mu) / sd
    n = len(label_names)
    linear = fit_linear(train_x, train_y.float() if multi_label else train_y, n, multi_label)
    with torch.no_grad():
        if not multi_label:
            return float(multiclass_f1_score(linear(test_x).argmax(1), test_y, n, average="macro"))
        from tweetcls.core.threshold import tune_threshold

        threshold, _ = tune_threshold(torch.sigmoid(linear(val_x)), val_y, label_names, "macro_f1")
        return float(multilabel_f1_score(torch.sigmoid(linear(test_x)), test_y.long(), n, threshold=threshold,
                                         average="macro"))


def result_name(dataset: str, model: str) -> str:
    """pooling_probe[-DATASET][-MODEL]: the default pair keeps the plain name; a run's model/ folder is
    named after its run, so probing a fine-tuned encoder never overwrites the pretrained one's JSON."""
    name = "pooling_probe" if dataset == "tweet_eval/emotion" else "pooling_probe-" + dataset.replace("/", "-")
    return name if model == "minilm-l6" else f"{name}-{model_label(model)}"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--dataset", default="tweet_eval/emotion")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--max-train-samples", type=int, default=None, help="the first N training examples")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModel, AutoTokenizer

    from tweetcls.datamodules.sources import load_labelled_data
    from tweetcls.core.resolve import resolve_model

    data = load_labelled_data(args.dataset)
    model_dir = resolve_model(args.model)
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    splits = {}
    for split in ("train", "validation", "test") if data.multi_label else ("train", "test"):
        ds = data.splits[split]
        if split == "train" and args.max_train_samples and args.max_train_samples < len(ds):
            ds = ds.select(range(args.max_train_samples))
        splits[split] = (embed(model, tokenizer, list(ds["text"]), args.max_length), torch.tensor(list(ds["label"])))
    splits.setdefault("validation", splits["test"])  # single-label probes do not use it
    scores = {name: probe(*[(feats[name], y) for feats, y in (splits["train"], splits["validation"], splits["test"])],
                          data.label_names, data.multi_label)
              for name in splits["train"][0]}
    print(f"{args.model} frozen, linear probe on {args.dataset}, test macro-F1")
    print("| features | macro-F1 |\n|---|---|")
    for name, score in scores.items():
        print(f"| {name} | {score:.4f} |")
    write_result(result_name(args.dataset, args.model), args, {"test_macro_f1": scores}, EXPERIMENT_RESULTS)


if __name__ == "__main__":
    main()
