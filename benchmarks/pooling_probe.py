"""How much a frozen checkpoint's first token vs the mean of its tokens knows about a task.

    python benchmarks/pooling_probe.py [--model minilm-l6] [--dataset tweet_eval/emotion]

Embeds train and test with the frozen encoder three ways (the [CLS] vector, BERT's pooler
on it, the masked mean of all tokens), fits a logistic-regression probe on train
(L-BFGS, standardized features) and prints test macro-F1 for each; writes
benchmarks/results/pooling_probe.json. This is why --pooling auto picks the mean for
sentence-transformers checkpoints.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import multiclass_f1_score

from common import parser, write_result


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


def probe(train_x, train_y, test_x, test_y, num_labels: int) -> float:
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mu) / sd, (test_x - mu) / sd
    torch.manual_seed(0)
    linear = torch.nn.Linear(train_x.shape[1], num_labels)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=300)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(train_x), train_y) + 1e-3 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(multiclass_f1_score(linear(test_x).argmax(1), test_y, num_labels, average="macro"))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--dataset", default="tweet_eval/emotion")
    p.add_argument("--max-length", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModel, AutoTokenizer

    from datamodules.sources import load_labelled_data
    from models.resolve import resolve_model

    data = load_labelled_data(args.dataset)
    model_dir = resolve_model(args.model)
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    train = embed(model, tokenizer, list(data.splits["train"]["text"]), args.max_length)
    test = embed(model, tokenizer, list(data.splits["test"]["text"]), args.max_length)
    train_y, test_y = torch.tensor(list(data.splits["train"]["label"])), torch.tensor(list(data.splits["test"]["label"]))
    scores = {name: probe(train[name], train_y, test[name], test_y, len(data.label_names)) for name in train}
    print(f"{args.model} frozen, linear probe on {args.dataset}, test macro-F1")
    print("| features | macro-F1 |\n|---|---|")
    for name, score in scores.items():
        print(f"| {name} | {score:.4f} |")
    write_result("pooling_probe", args, {"test_macro_f1": scores})


if __name__ == "__main__":
    main()
