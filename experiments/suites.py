"""Named experiment suites, run end to end on the CPU; resumable.

    python -m experiments.suites default-lora      # `python train.py --method lora` as it comes, per seed
    python -m experiments.suites lora-vs-full      # MiniLM-L6: full vs LoRA q+v vs LoRA all-linear
    python -m experiments.suites pooling           # MiniLM-L6 LoRA and full: first-token vs mean pooling
    python -m experiments.suites layer-copy        # MPNet-12 teacher -> 6-layer students, with/without KD
    python -m experiments.suites cross-tokenizer   # MPNet-12 teacher -> MiniLM-L6: no KD, logit KD, +hidden
    python -m experiments.suites goemotions        # 28-label multi-label, threshold tuned on val
    python -m experiments.suites intermediate      # MiniLM-L6 fine-tuned on GoEmotions first, then on emotion
    python -m experiments.suites precision         # fp32 vs bf16 autocast: LoRA, full, teacher, KD student
    python -m experiments.suites domain-adaptive   # MiniLM-L6 after masked-LM epochs on tweets vs MiniLM-L6
    python -m experiments.suites transfer          # KD with 0 / 10k / 30k / all (once) pool tweets labelled by the teacher
    python -m experiments.suites transfer-tasks    # the same on irony and hate: no pool vs the whole pool once
    python -m experiments.suites ref-a-disaster    # the reference experiments: ref-a-disaster, ref-b-sentiment,
                                                   # ref-c-goemotions, ref-d-hate, ref-e-covid (RESULTS.md)
    python -m experiments.suites tuned --best-config STUDY/best.yaml --datasets disaster_tweets --out runs/suites/disaster
    python -m experiments.suites SUITE --seeds 0 --dry-run   # print the commands only
    python -m experiments.suites goemotions --only '*lora*'  # just the runs whose name matches

Each run goes to OUT/SUITE/RUN (OUT: --out, default runs/suites). A run whose results.json
exists is skipped; one that stopped midway resumes from its last checkpoint. A finished run
keeps results.json, its TensorBoard events and model/ (the best weights, save_pretrained),
and drops checkpoints/ (a 6-layer student's best + last with optimizer state is 1.6 GB; a
whole layer-copy suite's would fill a 100 GB disk); --keep-checkpoints keeps them. Seeds are the
outer loop, so a stopped suite has whole seeds finished first. At the end the suite's
comparison table is written (evaluate.py --compare OUT/SUITE: Markdown, CSV, JSON and
TensorBoard) and, for the distillation suites, each student's ratio to its teacher.
"""

from __future__ import annotations

import argparse
import json
import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

from tweetcls.review.compare import model_label

REPO = Path(__file__).resolve().parents[1]

EMOTION = "tweet_eval/emotion"
LAYER_CHOICES = ("odd", "even", "distilbert", "bottom", "top")


def default_lora(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """`python train.py --method lora` exactly as a user types it (emotion, MiniLM-L6), per seed."""
    return [(f"default-lora-s{seed}", ["--method", "lora", "--seed", str(seed)]) for seed in args.seeds]


def lora_vs_full(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Suite 1: full (lr 5e-5) vs LoRA q+v and all-linear at lr 1e-3 and all-linear at the default
    5e-4 (= `python train.py --method lora`), same 3-epoch schedule."""
    runs = []
    for seed in args.seeds:
        for dataset in args.datasets:
            slug = dataset.replace("/", "-")
            common = ["--dataset", dataset, "--seed", str(seed), "--max-epochs", str(args.epochs or 3)]
            runs += [(f"{slug}-full-s{seed}", ["--method", "full", *common]),
                     (f"{slug}-lora-qv-s{seed}", ["--method", "lora", "--lora-targets", "query,value",
                                                  "--lr", "1e-3", *common]),
                     (f"{slug}-lora-all-lr1e-3-s{seed}", ["--method", "lora", "--lora-targets", "all-linear",
                                                          "--lr", "1e-3", *common]),
                     (f"{slug}-lora-all-s{seed}", ["--method", "lora", "--lora-targets", "all-linear", *common])]
    return runs


def pooling(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Issue 33: first-token vs mean pooling after fine-tuning (LoRA at its defaults, full at
    lr 5e-5; 3 epochs; MiniLM-L6). First-token pooling is what every plain Hugging Face client
    computes; the frozen probe's 4-point gap for the mean may not survive fine-tuning."""
    runs = []
    for seed in args.seeds:
        for dataset in args.datasets:
            slug = dataset.replace("/", "-")
            common = ["--dataset", dataset, "--seed", str(seed), "--max-epochs", str(args.epochs or 3)]
            for method in ("lora", "full"):
                runs += [(f"{slug}-{method}-{mode}-s{seed}", ["--method", method, "--pooling", mode, *common])
                         for mode in ("mean", "cls")]
    return runs


def teacher_run() -> tuple[str, list[str]]:
    """The MPNet-12 emotion teacher both distillation suites share (seed 0, 3 epochs)."""
    return "teacher-mpnet12-s0", ["--method", "teacher", "--dataset", EMOTION, "--seed", "0", "--max-epochs", "3"]


def teacher_dir(args: argparse.Namespace) -> Path:
    """--teacher if given (reuse a finished teacher from another --out), else the layer-copy suite's own."""
    if getattr(args, "teacher", None):
        return Path(args.teacher)
    return Path(args.out) / "layer-copy" / teacher_run()[0]


def layer_copy(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Suite 2: 6 of the teacher's 12 layers, five ways, trained with and without KD."""
    runs = [teacher_run()]
    for seed in args.seeds:
        for kd in ("kd", "ce"):
            for layers in LAYER_CHOICES:
                runs.append((f"student-{layers}-{kd}-s{seed}", [
                    "--method", "distill", "--teacher", str(teacher_dir(args)), "--layers", layers,
                    "--dataset", EMOTION, "--seed", str(seed), "--max-epochs", str(args.epochs or 2),
                    "--kd-alpha", "0.5" if kd == "kd" else "0"]))
    return runs


def cross_tokenizer(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Suite 3: MiniLM-L6 (its own WordPiece vocabulary) learning from the MPNet-12 teacher:
    labels only, logit KD, + hidden states, + a transfer set of unlabelled tweets."""
    arms = {"ce": ["--kd-alpha", "0"], "kd": [], "kd-a0.9": ["--kd-alpha", "0.9"],
            "kd-hidden": ["--hidden-loss", "cosine"],
            # 10k unlabelled tweets (TweetEval emoji's train split) labelled by the teacher alone
            "kd-transfer": ["--transfer-data", "tweet_eval/emoji", "--transfer-samples", "10000"],
            # the same from TweetEval offensive: angrier tweets, nearer emotion's commonest class
            "kd-transfer-offensive": ["--transfer-data", "tweet_eval/offensive", "--transfer-samples", "10000"]}
    runs = []
    for seed in args.seeds:
        for name, flags in arms.items():
            runs.append((f"minilm-{name}-s{seed}", [
                "--method", "distill", "--teacher", str(teacher_dir(args)), "--student", "minilm-l6",
                "--lr", "1e-4", "--dataset", EMOTION, "--seed", str(seed),
                "--max-epochs", str(args.epochs or 3), *flags]))
    return runs


TRANSFER_SIZES = {"0": None, "10k": "10000", "30k": "30000", "all-1ep": "all"}


def transfer_teacher(seed: int) -> tuple[str, list[str]]:
    """One of the transfer suite's MPNet-12 emotion teachers (3 epochs, as teacher_run)."""
    return f"transfer-teacher-s{seed}", ["--method", "teacher", "--dataset", EMOTION, "--seed", str(seed),
                                        "--max-epochs", "3"]


def transfer_student(name: str, seed: int, size: str, teacher: str, dataset: str = EMOTION,
                     epochs: int | None = None, method: str = "distill") -> tuple[str, list[str]]:
    """A MiniLM-L6 student of ``teacher`` (a run folder, or a comma list: their mean logits) with
    ``size`` pool texts (TRANSFER_SIZES) labelled by it; KD alpha 0.9, lr 1e-4 (LoRA 5e-4), 3 epochs
    (the whole pool: one)."""
    amount = TRANSFER_SIZES[size]
    pool = [] if amount is None else ["--transfer-data", "pool"] + ([] if amount == "all" else ["--transfer-samples", amount])
    lr = "5e-4" if method == "distill-lora" else "1e-4"
    epochs_flag = "1" if size == "all-1ep" else str(epochs or 3)
    return (f"{name}-{size}-s{seed}", ["--method", method, "--teacher", teacher, "--student", "minilm-l6",
                                       "--dataset", dataset, "--kd-alpha", "0.9", "--lr", lr, "--seed", str(seed),
                                       "--max-epochs", epochs_flag, *pool])


def transfer(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Issue 35: MiniLM-L6 distilled from MPNet-12 with 0, 10k, 30k or all of the unlabelled pool
    (``--transfer-data pool``: every offline tweet and GoEmotions text, emotion's own texts and
    near-duplicates of its val/test removed) labelled by the teacher; the best KD recipe (alpha
    0.9, lr 1e-4), 3 epochs. The whole pool (196k texts) is seen once ("all-1ep"): 3 epochs of it
    are 600k examples, 65 min a seed on 2 cores, against 200k for one. Ordered by what the curve
    needs first, not seeds outermost: the single-teacher curve on every seed, then the ensemble of
    3 teachers (mean logits), then LoRA students. A teacher pass over the pool is cached in
    chunks, so 10k's logits serve 30k and all."""
    folder = Path(args.out) / "transfer"
    teachers = [transfer_teacher(seed) for seed in (0, 1, 2)]
    single = str(folder / teachers[0][0])
    ensemble = ",".join(str(folder / name) for name, _ in teachers)
    runs = [teachers[0]]
    runs += [transfer_student("kd", seed, size, single, epochs=args.epochs) for seed in args.seeds for size in ("0", "10k", "30k")]
    runs += [transfer_student("kd", seed, "all-1ep", single) for seed in args.seeds]
    runs += teachers[1:]
    runs += [transfer_student("kd-ens", seed, size, ensemble, epochs=args.epochs)
             for size in ("0", "30k", "all-1ep") for seed in args.seeds]
    runs += [transfer_student("kd-lora", seed, size, single, epochs=args.epochs, method="distill-lora")
             for size in ("0", "30k") for seed in args.seeds]
    return runs


TRANSFER_TASKS = ("tweet_eval/irony", "tweet_eval/hate")  # irony first: its teacher takes 6 min, hate's 18


def task_teacher(dataset: str) -> tuple[str, list[str]]:
    """The MPNet-12 teacher of another task, trained as the emotion one (3 epochs, seed 0)."""
    return f"{dataset.split('/')[-1]}-teacher-s0", ["--method", "teacher", "--dataset", dataset, "--seed", "0",
                                                    "--max-epochs", "3"]


def transfer_tasks(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Issue 35's generality check: on irony and hate, plain KD (no pool) against the transfer
    recipe (the whole pool seen once, labelled by that task's teacher; the pool drops each task's
    own texts and near-copies of its val/test). One teacher per task; per task, seeds outermost."""
    folder = Path(args.out) / "transfer-tasks"
    runs = []
    for dataset in TRANSFER_TASKS:
        teacher = task_teacher(dataset)
        task = dataset.split("/")[-1]
        runs.append(teacher)
        runs += [transfer_student(f"{task}-kd", seed, size, str(folder / teacher[0]), dataset, args.epochs)
                 for seed in args.seeds for size in ("0", "all-1ep")]
    # Why the whole pool lowers hate: one epoch over 197k texts shows hate's 9k labelled tweets once,
    # 1 row in 22 (dilution), and its teacher calls 1.7% of the pool hateful (one-sided labels).
    # 30k texts for 3 epochs show the labelled tweets 3 times, 1 row in 4, with the same labels.
    hate_teacher = str(folder / task_teacher("tweet_eval/hate")[0])
    runs += [transfer_student("hate-kd", seed, "30k", hate_teacher, "tweet_eval/hate", args.epochs) for seed in args.seeds]
    return runs


def goemotions(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Suite 5: GoEmotions with MiniLM-L6 (the <= 23M model), threshold tuned on val."""
    common = ["--dataset", "go_emotions", "--max-epochs", str(args.epochs or 2)]
    runs = []
    for seed in args.seeds:
        runs += [(f"go_emotions-full-s{seed}", ["--method", "full", "--lr", "1e-4", "--seed", str(seed), *common]),
                 (f"go_emotions-lora-all-s{seed}", ["--method", "lora", "--lora-targets", "all-linear",
                                                    "--seed", str(seed), *common])]
    return runs


INTERMEDIATE_RUN = "intermediate-minilm-go_emotions-s0"


def intermediate_run() -> tuple[str, list[str]]:
    """MiniLM-L6 fully fine-tuned for one epoch on GoEmotions (43k Reddit comments, 28 emotions):
    the encoder the intermediate suite's emotion runs start from. Run once, seed 0."""
    return INTERMEDIATE_RUN, ["--method", "full", "--model", "minilm-l6", "--dataset", "go_emotions",
                              "--lr", "1e-4", "--max-epochs", "1", "--seed", "0"]


def intermediate(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Intermediate-task training for target (c): emotion fine-tuning started from MiniLM-L6 after one
    epoch on GoEmotions (a new 4-label head; the 28-label one is dropped), against the same commands
    started from MiniLM-L6 itself. The arms are suite 1's full (lr 5e-5) and default LoRA recipes."""
    encoder = str(Path(args.out) / "intermediate" / INTERMEDIATE_RUN / "model")
    runs = [intermediate_run()]
    for seed in args.seeds:
        common = ["--dataset", EMOTION, "--seed", str(seed), "--max-epochs", str(args.epochs or 3)]
        runs += [(f"goemotions-then-full-s{seed}", ["--method", "full", "--model", encoder, *common]),
                 # gentler: does a lower rate keep more of what the GoEmotions epoch taught?
                 (f"goemotions-then-full-lr2e-5-s{seed}", ["--method", "full", "--model", encoder, "--lr", "2e-5",
                                                           *common]),
                 (f"goemotions-then-lora-s{seed}", ["--method", "lora", "--model", encoder, *common]),
                 (f"full-s{seed}", ["--method", "full", *common]),
                 (f"lora-s{seed}", ["--method", "lora", *common])]
    return runs


PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}


def precision(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """fp32 against bf16 autocast, each arm right after the other on the same machine: the default
    LoRA command and full fine-tuning per seed; on seed 0 also the MPNet-12 teacher and the best KD
    recipe for MiniLM-L6 (alpha 0.9, 5 epochs, from the fp32 teacher), the slow ones."""
    teacher = str(Path(args.out) / "precision" / "teacher-fp32-s0")
    runs = []
    for seed in args.seeds:
        for tag, value in PRECISIONS.items():
            runs += [(f"lora-{tag}-s{seed}", ["--method", "lora", "--seed", str(seed), "--precision", value]),
                     (f"full-{tag}-s{seed}", ["--method", "full", "--seed", str(seed), "--precision", value])]
        if seed != args.seeds[0]:
            continue
        for tag, value in PRECISIONS.items():
            runs.append((f"teacher-{tag}-s{seed}", [*teacher_run()[1], "--precision", value]))
        for tag, value in PRECISIONS.items():
            runs.append((f"student-kd-a0.9-{tag}-s{seed}", [
                "--method", "distill", "--teacher", teacher, "--student", "minilm-l6", "--lr", "1e-4",
                "--dataset", EMOTION, "--seed", str(seed), "--max-epochs", "5", "--kd-alpha", "0.9",
                "--precision", value]))
    return runs


def tuned(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """A search's best configuration (tune.py's best.yaml) against the default LoRA command on the
    same dataset, per seed, scored on test (the search itself never read test)."""
    best = getattr(args, "best_config", None) or "best.yaml"
    dataset = args.datasets[0]
    runs = []
    for seed in args.seeds:
        runs += [(f"default-s{seed}", ["--method", "lora", "--dataset", dataset, "--seed", str(seed)]),
                 (f"tuned-s{seed}", ["--config", str(best), "--dataset", dataset, "--seed", str(seed),
                                     "--test"])]
    return runs


def reference_a(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Reference A. Theirs: disaster tweets, DistilBERT + LoRA, then 8-bit dynamic quantization,
    served from a web form; no number published. Here: LoRA (the default recipe) and full
    fine-tuning of MiniLM-L6 per seed; the int8 rows are ``evaluate.py RUN --compress
    none,int8,onnx-int8`` on each finished run."""
    runs = []
    for seed in args.seeds:
        common = ["--dataset", "disaster_tweets", "--seed", str(seed)]
        runs += [(f"lora-s{seed}", ["--method", "lora", *common]), (f"full-s{seed}", ["--method", "full", *common])]
    return runs


def reference_b(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Reference B. Theirs: 1,000 truncated IMDb reviews, DistilBERT + LoRA (lr 1e-3, 10 epochs,
    batch 16): 91.5% validation accuracy. Here: IMDb 600/200/200 (reviews of ~230 words) with
    their LoRA recipe and with full fine-tuning, at --max-length 128, 256 and 512; and SST-2, the
    sentence-level counterpart (published DistilBERT 90.4), one epoch over its 67k phrases. Arms
    longer than ~10 minutes on 2 cores (length 512; full fine-tuning on SST-2) run on the first
    seed only, as the reference-experiment issue asks."""
    runs = []
    for seed in args.seeds:
        for length in (128, 256, 512) if seed == args.seeds[0] else (128, 256):
            common = ["--dataset", "imdb", "--seed", str(seed), "--max-length", str(length)]
            runs += [(f"imdb-lora-len{length}-s{seed}", ["--method", "lora", "--lr", "1e-3", "--max-epochs", "10",
                                                         "--batch-size", "16", *common]),
                     (f"imdb-full-len{length}-s{seed}", ["--method", "full", *common])]
        common = ["--dataset", "sst2", "--seed", str(seed), "--max-epochs", str(args.epochs or 1)]
        runs.append((f"sst2-lora-s{seed}", ["--method", "lora", *common]))
        if seed == args.seeds[0]:
            runs.append((f"sst2-full-s{seed}", ["--method", "full", *common]))
    return runs


def kd_students(teacher: str, seed: int, epochs: int, common: list[str]) -> list[tuple[str, list[str]]]:
    """References C and D: the odd and even students with KD, and the odd one trained through
    LoRA with the same KD (does LoRA itself lag, on the same model?)."""
    kd = ["--teacher", teacher, "--max-epochs", str(epochs), *common]
    students = [(f"student-{layers}-kd-s{seed}", ["--method", "distill", "--layers", layers, *kd])
                for layers in ("odd", "even")]
    return [*students, (f"student-odd-lora-kd-s{seed}", ["--method", "distill-lora", "--layers", "odd", *kd])]


HATE_TEACHER = "teacher-hate-mpnet12-s0"


def reference_d(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Reference D. Theirs: a hate-speech tweet set (not here), odd/even 6-layer students of a
    12-layer model against LoRA: test accuracy 0.978 / 0.978 / 0.747. Here: TweetEval hate with
    the MPNet-12 teacher, odd and even students with KD (layer-copy's recipe), the odd student
    trained through LoRA with the same KD (``--method distill-lora``: does LoRA itself lag, on
    the same model?) and LoRA on MiniLM-L6, per seed."""
    teacher = str(Path(args.out) / "ref-d-hate" / HATE_TEACHER)
    runs = [(HATE_TEACHER, ["--method", "teacher", "--dataset", "tweet_eval/hate", "--seed", "0", "--max-epochs", "3"])]
    for seed in args.seeds:
        common = ["--dataset", "tweet_eval/hate", "--seed", str(seed)]
        runs += kd_students(teacher, seed, args.epochs or 2, common)
        runs.append((f"minilm-lora-s{seed}", ["--method", "lora", *common]))
    return runs


GOEMOTIONS_TEACHER, GOEMOTIONS_SUBSET = "teacher-goemotions-mpnet12-s0", "10000"


def reference_c(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Reference C. Theirs: GoEmotions, 6-layer students of a 12-layer BERT by odd and even layers,
    3 epochs with KD; DistilBERT + LoRA (q_lin, v_lin, lr 2e-5): accuracy 0.572 / 0.578 / 0.529.
    Here: the MPNet-12 teacher, odd and even students with KD, the odd student trained through
    LoRA with the same KD (``--method distill-lora``), and LoRA on MiniLM-L6 both with their
    recipe (query,value at lr 2e-5) and ours, all on a fixed 10,000-example subset of the 43k
    training comments (a full teacher epoch is over an hour on 2 cores). The students (~20
    minutes each on 2 cores) run on the first seed only, the MiniLM-L6 LoRA arms on every seed."""
    subset = ["--dataset", "go_emotions", "--max-train-samples", GOEMOTIONS_SUBSET]
    teacher = str(Path(args.out) / "ref-c-goemotions" / GOEMOTIONS_TEACHER)
    runs = [(GOEMOTIONS_TEACHER, ["--method", "teacher", "--seed", "0", "--max-epochs", "2", *subset])]
    for seed in args.seeds:
        common = [*subset, "--seed", str(seed)]
        if seed == args.seeds[0]:
            runs += kd_students(teacher, seed, args.epochs or 3, common)
        runs += [(f"minilm-lora-theirs-s{seed}", ["--method", "lora", "--lora-targets", "query,value", "--lr", "2e-5",
                                                  "--max-epochs", str(args.epochs or 3), *common]),
                 (f"minilm-lora-s{seed}", ["--method", "lora", *common])]
    return runs


COVID_TEACHER = "teacher-covid-mpnet12-s0"


def reference_e(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Reference E. Theirs: COVID tweet sentiment (5 classes), RoBERTa/DeBERTa with the HF Trainer,
    Optuna, ONNX int8, pruning, cross-tokenizer distillation, a thresholded decision rule. Here the
    training runs of that pipeline: LoRA and full fine-tuning of MiniLM-L6 (also at the KD arm's lr),
    the MPNet-12 teacher and MiniLM-L6 distilled from it across tokenizers (logit KD). The search (tune.py), pruning with
    recovery, ONNX int8 and abstaining are commands on these runs (RESULTS.md)."""
    teacher = str(Path(args.out) / "ref-e-covid" / COVID_TEACHER)
    runs = [(COVID_TEACHER, ["--method", "teacher", "--dataset", "covid_tweets", "--seed", "0", "--max-epochs", "5"])]
    for seed in args.seeds:
        common = ["--dataset", "covid_tweets", "--seed", str(seed)]
        runs += [(f"lora-s{seed}", ["--method", "lora", "--max-epochs", "5", *common]),
                 (f"full-s{seed}", ["--method", "full", "--max-epochs", "5", *common]),
                 # the KD arm's learning rate without the teacher: what distillation adds beyond it
                 (f"full-lr1e-4-s{seed}", ["--method", "full", "--max-epochs", "5", "--lr", "1e-4", *common]),
                 (f"minilm-kd-s{seed}", ["--method", "distill", "--teacher", teacher, "--student", "minilm-l6",
                                         "--lr", "1e-4", "--max-epochs", "5", "--kd-alpha", "0.9", *common])]
    return runs


MLM_EPOCHS = (1, 2)  # the masked-LM budgets of the domain-adaptive suite (one run each, seed 0)
GENERALITY_TASKS = ("tweet_eval/hate", "tweet_eval/irony", "tweet_eval/offensive")


def mlm_run(epochs: int) -> tuple[str, list[str]]:
    """MiniLM-L6 after ``epochs`` of masked-LM training on the tweet corpus (pretrain.py's defaults)."""
    return f"mlm-tweets-e{epochs}-s0", ["pretrain.py", "--max-epochs", str(epochs), "--seed", "0"]


# checks of why adaptation hurt: the first 500 steps train only the new MLM head; and that at a 5x lower lr
_HEAD_WARMUP = ["pretrain.py", "--max-epochs", "1", "--head-warmup-steps", "500", "--seed", "0"]
MLM_VARIANTS = {"mlm-e1-hw500": ("mlm-tweets-e1-hw500-s0", _HEAD_WARMUP),
                "mlm-e1-hw500-lr2e-5": ("mlm-tweets-e1-hw500-lr2e-5-s0", [*_HEAD_WARMUP, "--lr", "2e-5"])}


def domain_adaptive(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Issue 20: MiniLM-L6 against MiniLM-L6 adapted to tweets by 1 and 2 masked-LM epochs. On
    emotion: the default LoRA command, full fine-tuning, and the best KD recipe from the MPNet-12
    teacher (alpha 0.9, 5 epochs); on hate, irony and offensive: the default LoRA command with
    MiniLM-L6 and the 1-epoch encoder (does adaptation help beyond emotion?). And a check of why
    adaptation hurt: 1 epoch whose first 500 steps train only the new MLM head, also at lr 2e-5
    (default LoRA on emotion)."""
    folder = Path(args.out) / "domain-adaptive"
    encoders = {"minilm": "minilm-l6", **{f"mlm-e{e}": str(folder / mlm_run(e)[0] / "model") for e in MLM_EPOCHS}}
    runs = [mlm_run(e) for e in MLM_EPOCHS] + list(MLM_VARIANTS.values())
    for seed in args.seeds:
        common = ["--dataset", EMOTION, "--seed", str(seed)]
        for name, encoder in encoders.items():
            runs += [(f"{name}-lora-s{seed}", ["--method", "lora", "--model", encoder, *common]),
                     (f"{name}-full-s{seed}", ["--method", "full", "--model", encoder, *common]),
                     (f"{name}-kd-a0.9-s{seed}", ["--method", "distill", "--teacher", str(teacher_dir(args)),
                                                  "--student", encoder, "--lr", "1e-4", "--max-epochs", "5",
                                                  "--kd-alpha", "0.9", *common])]
        runs += [(f"{name}-lora-s{seed}", ["--method", "lora", "--model", str(folder / run / "model"), *common])
                 for name, (run, _) in MLM_VARIANTS.items()]
        for task in GENERALITY_TASKS:
            for name in ("minilm", f"mlm-e{MLM_EPOCHS[0]}"):
                runs.append((f"{task.split('/')[-1]}-{name}-lora-s{seed}",
                             ["--method", "lora", "--model", encoders[name], "--dataset", task, "--seed", str(seed)]))
    return runs


SUITES = {"default-lora": default_lora, "lora-vs-full": lora_vs_full, "pooling": pooling, "layer-copy": layer_copy, "cross-tokenizer": cross_tokenizer,
          "goemotions": goemotions, "intermediate": intermediate, "precision": precision,
          "domain-adaptive": domain_adaptive, "tuned": tuned,
          "ref-a-disaster": reference_a, "ref-b-sentiment": reference_b, "ref-c-goemotions": reference_c,
          "ref-d-hate": reference_d, "ref-e-covid": reference_e, "transfer": transfer,
          "transfer-tasks": transfer_tasks}
SHARED_RUNS = (teacher_run()[0], *(transfer_teacher(seed)[0] for seed in (0, 1, 2)),
               *(task_teacher(d)[0] for d in TRANSFER_TASKS), INTERMEDIATE_RUN, HATE_TEACHER, GOEMOTIONS_TEACHER, COVID_TEACHER,
               *(mlm_run(e)[0] for e in MLM_EPOCHS), *(run for run, _ in MLM_VARIANTS.values()))  # runs other runs of the suite start from


def select_runs(runs: list[tuple[str, list[str]]], pattern: str) -> list[tuple[str, list[str]]]:
    """The runs whose name matches the glob, and the shared runs (teacher, intermediate or masked-LM
    encoder) that one of them starts from (its folder is in their flags)."""
    chosen = [(name, flags) for name, flags in runs if fnmatch.fnmatchcase(name, pattern)]
    needed = {shared for shared in SHARED_RUNS if any(shared in " ".join(flags) for _, flags in chosen)}
    return [(name, flags) for name, flags in runs if name in needed or (name, flags) in chosen]


def train_command(run_dir: Path, flags: list[str]) -> list[str] | None:
    """The command that finishes this run (train.py, or the program ``flags`` starts with, e.g.
    pretrain.py), or None when it is finished."""
    program = "train.py"
    if flags and flags[0].endswith(".py"):
        program, flags = flags[0], flags[1:]
    train = [sys.executable, str(REPO / program)]
    if (run_dir / "results.json").exists():
        return None
    if (run_dir / "checkpoints" / "last.ckpt").exists():
        return [*train, "--resume", str(run_dir), "--no-progress-bar"]
    return [*train, *flags, "--output-dir", str(run_dir.parent), "--run-name", run_dir.name,
            "--overwrite", "--no-progress-bar"]


def drop_checkpoints(run_dir: Path) -> None:
    """A finished run's Lightning checkpoints: model/ holds its best weights, nothing is left to resume."""
    if (run_dir / "results.json").exists() and (run_dir / "model").is_dir():
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


def add_missing_latency(run_dir: Path) -> None:
    """Runs made before train.py recorded CPU latency get it measured from their saved model."""
    path = run_dir / "results.json"
    results = json.loads(path.read_text())
    if "inference" in results or str(results.get("method", "")).startswith("mlm"):  # an encoder has no classifier
        return
    from tweetcls.loader import load_run
    from tweetcls.core.latency import cpu_latency

    results["inference"] = cpu_latency(load_run(run_dir / "model").model)
    path.write_text(json.dumps(results, indent=2))


def ratios_to_teacher(rows: list[dict]) -> str:
    """Student / teacher metric and teacher / student latency (= throughput ratio)."""
    teachers = [r for r in rows if r["method"] == "teacher"]
    if not teachers:
        return ""
    t = teachers[0]
    lines = ["| student | KD | layers | test metric | vs teacher | CPU ms | throughput vs teacher | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["method"] not in ("distill", "distill-lora"):
            continue
        speed = t["latency_ms"] / r["latency_ms"] if r["latency_ms"] and t["latency_ms"] else float("nan")
        sd = f" ± {r['test_metric_sd']:.4f}" if len(r["seeds"]) > 1 else ""
        through = " via LoRA" if r["method"] == "distill-lora" else ""
        lines.append(f"| {model_label(r['model'])}{through} | {r['kd']} | {r['layers'] or 'own'} | {r['test_metric']:.4f}{sd} "
                     f"| {r['test_metric'] / t['test_metric']:.3f} | {r['latency_ms']:.0f} | {speed:.2f}x "
                     f"| {len(r['seeds'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--out", default="runs/suites", help="suites go to OUT/SUITE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the suite's schedule")
    parser.add_argument("--datasets", nargs="+", default=[EMOTION, "tweet_eval/hate"],
                        help="lora-vs-full; tuned: the first one")
    parser.add_argument("--best-config", default=None, help="tuned: the best.yaml a tune.py study wrote")
    parser.add_argument("--only", metavar="PATTERN", default=None,
                        help="run only the runs whose name matches this glob (a run the others start from, the "
                             "teacher or the intermediate model, still runs)")
    parser.add_argument("--teacher", metavar="RUN_DIR", default=None,
                        help="distillation suites: a finished teacher run to use instead of training "
                             "OUT/layer-copy/teacher-mpnet12-s0 (e.g. when --out or --epochs differ)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands that would run")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep finished runs' checkpoints/ (by default only model/ and results.json stay)")
    args = parser.parse_args(argv)

    if args.suite == "tuned" and not (args.best_config and Path(args.best_config).is_file()):
        parser.error("the tuned suite needs --best-config <study>/best.yaml, written by tune.py")
    if args.teacher and not (Path(args.teacher) / "results.json").exists():
        parser.error(f"--teacher {args.teacher}: no results.json there; give a finished teacher run directory")
    runs = SUITES[args.suite](args)
    if args.only:
        runs = select_runs(runs, args.only)
    if args.suite in ("cross-tokenizer", "domain-adaptive") and any("--teacher" in flags for _, flags in runs):
        runs.insert(0, teacher_run())  # their teacher is the layer-copy suite's, trained first if needed
    if args.teacher:  # trained elsewhere: nothing to run for it
        runs = [run for run in runs if run[0] != teacher_run()[0]]
    for name, flags in runs:
        run_dir = teacher_dir(args) if name == teacher_run()[0] else Path(args.out) / args.suite / name
        cmd = train_command(run_dir, flags)
        if cmd is None:
            print(f"skip {run_dir}: finished", file=sys.stderr)
        else:
            print("run:", " ".join(cmd[1:]), file=sys.stderr, flush=True)
            if not args.dry_run and subprocess.run(cmd).returncode != 0:
                print(f"suites.py: {run_dir} failed; rerun the same command to resume", file=sys.stderr)
                return 1
        if not args.dry_run:
            add_missing_latency(run_dir)
            if not args.keep_checkpoints:
                drop_checkpoints(run_dir)
    if args.dry_run:
        return 0

    from tweetcls.review.compare import compare_runs

    # the teacher lives outside this suite's folder: in layer-copy, or wherever --teacher points
    also = [teacher_dir(args)] if args.suite in ("cross-tokenizer", "domain-adaptive") or args.teacher else []
    summary = compare_runs(Path(args.out) / args.suite, also)
    print(summary["markdown"])
    ratios = ratios_to_teacher(summary["rows"])
    if ratios:
        (Path(args.out) / args.suite / "ratios.md").write_text(ratios + "\n")
        print("\n" + ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
