"""Continue masked-language-model pretraining of an encoder on unlabelled text (domain adaptation).

    python pretrain.py                                    # MiniLM-L6 on the tweet corpus, 1 epoch
    python pretrain.py --max-epochs 2 --mlm-data tweets go_emotions
    python pretrain.py --mlm-data my_tweets.txt --lora    # LoRA factors + MLM head only
    python train.py --method lora --model runs/<run>/model   # then fine-tune the adapted encoder

The tweet corpus (``--mlm-data tweets``, the default) is the training texts of every tweet
task here, deduplicated, with no text of any validation or test split. Whole words are
masked (15%, BERT's 80/10/10 rule); a fixed held-out slice gives the MLM loss and perplexity
per epoch. The run directory is train.py's: TensorBoard, checkpoints, --resume, and a
``model/`` that ``train.py --model`` (and ``--student``) loads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tweetcls.core.errors import UsageError
from tweetcls.core.options import (DefaultsHelp, EXISTING_DIR, EXISTING_FILE, Encoding, FRACTION, NON_NEGATIVE_FLOAT, NON_NEGATIVE_INT,
                                   OPEN_PROBABILITY, POSITIVE_FLOAT, POSITIVE_INT, Parser, SEED, count,
                                   STEPS_OR_ALL, Text, program)
from tweetcls.training.settings import PretrainSettings

PROGRAM = "pretrain.py"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelp)
    p.add_argument("--config", type=EXISTING_FILE, help="YAML file of option values; flags on the command line win")
    p.add_argument("--model", type=Text("model name or folder"), default="minilm-l6", help="short name, Hugging Face hub id, or local folder of an encoder")
    p.add_argument("--mlm-data", type=Text("dataset name or file"), nargs="+", default=["tweets"],
                   help="unlabelled text: 'tweets' (the tweet corpus), dataset names (their train split) "
                        "and .txt files (one text per line)")
    p.add_argument("--data-dir", type=EXISTING_DIR, default=None, help="folder with the offline datasets (default: $TWEETCLS_DATA_DIR)")
    p.add_argument("--encoding", type=Encoding(), default="utf-8",
                   help="text encoding of the .txt and data files in --mlm-data (e.g. latin-1, cp1252, utf-16)")
    p.add_argument("--heldout", type=POSITIVE_INT, default=2000, help="texts held out (fixed) for the MLM loss per epoch")
    p.add_argument("--mlm-probability", type=OPEN_PROBABILITY, default=0.15, help="share of words masked")
    p.add_argument("--max-length", type=count(3), default=64)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=32)
    p.add_argument("--eval-batch-size", type=POSITIVE_INT, default=128)
    p.add_argument("--lr", type=POSITIVE_FLOAT, default=1e-4)
    p.add_argument("--weight-decay", type=NON_NEGATIVE_FLOAT, default=0.01)
    p.add_argument("--warmup-ratio", type=FRACTION, default=0.06)
    p.add_argument("--max-epochs", type=POSITIVE_INT, default=1)
    p.add_argument("--head-warmup-steps", type=NON_NEGATIVE_INT, default=0,
                   help="train only the MLM head for the first N steps (the encoder and word embeddings frozen)")
    p.add_argument("--max-steps", type=STEPS_OR_ALL, default=-1)
    p.add_argument("--max-train-samples", type=POSITIVE_INT, default=None)
    p.add_argument("--patience", type=NON_NEGATIVE_INT, default=0, help="stop after N epochs without a lower held-out loss (0: off)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--fast-dropout", action=argparse.BooleanOptionalAction, default=True)
    lora = p.add_argument_group("LoRA (train the adapters and the MLM head instead of every weight)")
    lora.add_argument("--lora", action="store_true")
    lora.add_argument("--lora-r", type=POSITIVE_INT, default=8)
    lora.add_argument("--lora-alpha", type=POSITIVE_FLOAT, default=16)
    lora.add_argument("--lora-dropout", type=FRACTION, default=0.1)
    lora.add_argument("--lora-targets", type=Text("list of layer names"), default="all-linear")
    from tweetcls.training.options import add_run_options

    add_run_options(p, run_name_help="default: mlm-<data>-<model>-s<seed>-<time>")
    return p


def parse_args(argv: list[str] | None = None) -> PretrainSettings:
    """pretrain.py's settings (flags over --config or a resumed run's config.yaml), checked against
    this machine's hardware, the run named."""
    from tweetcls.training.hardware import check_hardware
    from tweetcls.training.options import parse_run_options

    args = parse_run_options(build_parser(), argv)
    # the defaults of a fresh parser: parse_run_options set the --config's values as this one's
    ignored = [a for a in build_parser()._actions if a.dest.startswith("lora_") and getattr(args, a.dest) != a.default]
    if ignored and not args.lora:  # read only with --lora: --lora-r 4 alone was ignored without a word
        given = ", ".join(f"{a.option_strings[-1]} {getattr(args, a.dest)}" for a in ignored)
        raise UsageError(f"{given} {'set' if len(ignored) > 1 else 'sets'} the LoRA adapters, which only --lora "
                         "trains; add --lora, or drop " + ("them" if len(ignored) > 1 else "it"))
    if not args.run_name:
        from tweetcls.core.runs import dataset_slug, timestamp

        data = "+".join(dataset_slug(d) for d in args.mlm_data)
        args.run_name = f"mlm-{data}-{Path(str(args.model).rstrip('/')).name}-s{args.seed}-{timestamp()}"
    settings = PretrainSettings.from_namespace(args)
    check_hardware(settings)
    return settings


def build(args: PretrainSettings, model_dir: Path):
    """(masked-LM model made trainable as asked, info): the head is created where the checkpoint lacks one."""
    from tweetcls.mlm.encoder import masked_lm_for, mlm_head
    from tweetcls.core.parameters import count_parameters

    model, created = masked_lm_for(model_dir)
    info = {"mlm_head_created": bool(created), "created_weights": created}
    if args.lora:
        from tweetcls.lora import inject_lora, mark_only_lora_as_trainable

        targets = args.lora_targets.split(",") if args.lora_targets else None
        # the encoder's Linears only: the head is trained whole
        wrapped = inject_lora(model.base_model, targets, r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout)
        tied = model.get_input_embeddings().weight
        mark_only_lora_as_trainable(model, train_head=False)  # the classifier's rule; the MLM head follows
        for param in mlm_head(model).parameters():
            param.requires_grad = param is not tied  # the tied decoder is the (frozen) word embedding table
        info["lora"] = {"targets": wrapped, "r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout}
    if args.fast_dropout:
        from tweetcls.core.dropout import use_fast_dropout

        use_fast_dropout(model)
    info["params_total"], info["params_trainable"] = count_parameters(model)
    return model, info


def pretrain_and_save(args: PretrainSettings, extra_callbacks: list | None = None, started: float | None = None) -> dict:
    import lightning as L

    from tweetcls.training import pipeline
    from tweetcls.datamodules.corpus import build_corpus
    from tweetcls.mlm.data import MaskedLMDataModule
    from tweetcls.mlm.module import MaskedLMModule
    from tweetcls.core.build import load_tokenizer
    from tweetcls.core.resolve import resolve_model

    L.seed_everything(args.seed, workers=True, verbose=False)  # as train.py: the one line of an error stays one
    model_dir = resolve_model(args.model)
    tokenizer = load_tokenizer(model_dir)
    if tokenizer.mask_token_id is None:
        raise UsageError(f"{args.model}'s tokenizer has no mask token; masked-LM training needs an encoder")
    corpus = build_corpus(args.mlm_data, args.data_dir, encoding=args.encoding)
    datamodule = MaskedLMDataModule(corpus.texts, tokenizer, args.heldout, args.mlm_probability,
                                    max_length=args.max_length, batch_size=args.batch_size,
                                    eval_batch_size=args.eval_batch_size, seed=args.seed,
                                    max_train_samples=args.max_train_samples, num_workers=args.num_workers)
    model, info = build(args, model_dir)
    run_dir, resume_from = pipeline.open_run_dir(args)
    module = MaskedLMModule(model, lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
                            adapter_only_checkpoints=args.lora, head_warmup_steps=args.head_warmup_steps)
    trainer, _, last_checkpoint, clock = pipeline.make_trainer(args, run_dir, extra_callbacks,
                                                            monitor=("val/mlm_loss", "min"))
    before = None
    if resume_from is None:
        pipeline.log_run_start(trainer.logger, info)
        before = trainer.validate(module, datamodule=datamodule, verbose=False)[0]["val/mlm_loss"]
    pipeline.fit(trainer, module, datamodule, resume_from, run_dir, last_checkpoint.path, args.lr, PROGRAM)
    results = {
        "method": "mlm" + ("-lora" if args.lora else ""), "model": args.model, "model_path": str(model_dir),
        "dataset": "+".join(args.mlm_data), "seed": args.seed, "corpus": corpus.report(),
        "train_texts": len(datamodule.encoded["train"]), "heldout_texts": args.heldout,
        "heldout_mlm_loss_before": before, "heldout_mlm_loss_per_epoch": module.heldout_losses,
        "params_total": info["params_total"], "params_trainable": info["params_trainable"],
        "mlm_head_created": info["mlm_head_created"], "lora": info.get("lora"),
        "fit_seconds": clock.fit_seconds, "train_step_seconds": clock.step_seconds,
        "train_samples_per_sec": clock.samples_per_second,
        "epochs": trainer.current_epoch, "steps": trainer.global_step, "precision": args.precision,
        "run_dir": str(run_dir), "config": args.as_dict(),
    }
    if started is not None:
        results["wall_seconds"] = time.time() - started  # the whole command, as train.py records it
    if trainer.is_global_zero:
        export(model, tokenizer, model_dir, run_dir, results)
        from tweetcls.review.tensorboard import parameter_counts

        for tag, value in parameter_counts(info["params_total"], info["params_trainable"]).items():
            trainer.logger.experiment.add_scalar(tag, value, trainer.global_step)  # the level's end
    trainer.logger.finalize("success")
    return results


def export(model, tokenizer, model_dir: Path, run_dir: Path, results: dict) -> None:
    """model/ (the encoder, LoRA merged, with the original pooler and pooling), then results.json."""
    from tweetcls.mlm.encoder import save_encoder
    from tweetcls.core.atomic import atomic_directory
    from tweetcls.core.results_file import write_results
    from tweetcls.core.runs import environment

    if results["lora"]:
        from tweetcls.lora import merge_lora

        merge_lora(model)
    with atomic_directory(run_dir / "model", "model") as folder:
        save_encoder(model, model_dir, folder)
        tokenizer.save_pretrained(folder)
    results["environment"] = environment()
    write_results(run_dir, results)


def main(argv: list[str] | None = None) -> int:
    from tweetcls.training.command import run_command

    code, results = run_command(program(PROGRAM), argv, parse_args, build_parser, body=pretrain_and_save)
    if results is None:
        return code
    before, losses = results["heldout_mlm_loss_before"], results["heldout_mlm_loss_per_epoch"]
    print(f"run directory: {results['run_dir']}\n  corpus: {results['corpus']['texts']:,} texts "
          f"({results['train_texts']:,} train, {results['heldout_texts']:,} held out)\n"
          f"  held-out MLM loss: {'' if before is None else f'{before:.3f} before, '}"
          f"{', '.join(f'{v:.3f}' for v in losses)} after each epoch\n"
          f"  training: {results['fit_seconds']:.0f} s, precision {results['precision']}\n"
          f"  fine-tune it: python train.py --model {results['run_dir']}/model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
