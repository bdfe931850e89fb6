"""experiments/suites.py: finished runs are skipped, stopped ones resumed, seeds run outermost."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import suites

from tweetcls.review.compare import distillation_label


def test_a_run_is_started_resumed_or_skipped_by_what_its_folder_holds(tmp_path):
    run = tmp_path / "suite" / "r1"
    fresh = suites.train_command(run, ["--method", "lora"])
    assert "--resume" not in fresh and fresh[fresh.index("--method") + 1] == "lora"
    assert fresh[fresh.index("--output-dir") + 1] == str(run.parent) and fresh[fresh.index("--run-name") + 1] == "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    resumed = suites.train_command(run, ["--method", "lora"])
    assert resumed[resumed.index("--resume") + 1] == str(run) and "--method" not in resumed
    (run / "results.json").write_text("{}")
    assert suites.train_command(run, ["--method", "lora"]) is None


def test_only_a_finished_run_with_a_saved_model_loses_its_checkpoints(tmp_path):
    run = tmp_path / "suite" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    suites.drop_checkpoints(run)  # still running: its last.ckpt is what --resume needs
    assert (run / "checkpoints" / "last.ckpt").exists()
    (run / "results.json").write_text("{}")
    suites.drop_checkpoints(run)  # finished, but no model/ to hold the weights
    assert (run / "checkpoints" / "last.ckpt").exists()
    (run / "model").mkdir()
    suites.drop_checkpoints(run)
    assert not (run / "checkpoints").exists() and (run / "results.json").exists() and (run / "model").is_dir()


def test_seeds_are_the_outer_loop_and_names_are_unique(tmp_path):
    args = suites.argparse.Namespace(seeds=[0, 1], epochs=None, out=str(tmp_path),
                                     datasets=["tweet_eval/emotion", "tweet_eval/hate"])
    for name, build in suites.SUITES.items():
        runs = build(args)
        names = [name for name, _ in runs]
        assert len(names) == len(set(names))
        seeds = [flags[flags.index("--seed") + 1] for _, flags in runs]
        assert name.startswith("transfer") or seeds == sorted(seeds)  # every seed-0 run before any seed-1 run


def test_the_transfer_suite_trains_each_teacher_before_its_students_and_the_cheap_curve_first(tmp_path):
    args = suites.argparse.Namespace(seeds=[0, 1, 2], epochs=None, out=str(tmp_path))
    runs = suites.transfer(args)
    names = [name for name, _ in runs]
    for i, (name, flags) in enumerate(runs):
        if "--teacher" in flags:
            teachers = flags[flags.index("--teacher") + 1].split(",")
            assert all(Path(t).name in names[:i] for t in teachers), name
        if "--transfer-data" in flags:
            assert flags[flags.index("--transfer-data") + 1] == "pool"
    sizes = {name: (dict(zip(flags, flags[1:])).get("--transfer-samples"), "--transfer-data" in flags)
             for name, flags in runs}
    assert sizes["kd-0-s2"] == (None, False) and sizes["kd-30k-s1"] == ("30000", True) and sizes["kd-all-1ep-s0"] == (None, True)
    assert max(names.index(f"kd-{size}-s{seed}") for size in ("0", "10k", "30k") for seed in (0, 1, 2)) < names.index("kd-all-1ep-s0")
    epochs = {name: dict(zip(flags, flags[1:]))["--max-epochs"] for name, flags in runs}
    assert epochs["kd-all-1ep-s1"] == epochs["kd-ens-all-1ep-s2"] == "1" and epochs["kd-30k-s0"] == "3"
    assert len(dict(runs)["kd-ens-30k-s0"][dict(runs)["kd-ens-30k-s0"].index("--teacher") + 1].split(",")) == 3


def test_the_transfer_tasks_distil_each_task_from_its_own_teacher_with_and_without_the_pool(tmp_path):
    args = suites.argparse.Namespace(seeds=[0, 1, 2], epochs=None, out=str(tmp_path))
    runs = suites.transfer_tasks(args)
    names = [name for name, _ in runs]
    students = 0
    for i, (name, flags) in enumerate(runs):
        options = dict(zip(flags, flags[1:]))
        if options["--method"] == "teacher":
            continue
        students += 1
        task = name.split("-")[0]
        teacher = Path(options["--teacher"])
        assert options["--dataset"] == f"tweet_eval/{task}" and teacher.name == f"{task}-teacher-s0", name
        assert teacher.name in names[:i] and teacher.parent == tmp_path / "transfer-tasks"
        assert ("--transfer-data" in flags) == ("-all-1ep-" in name or "-30k-" in name)
        assert options.get("--transfer-samples") == ("30000" if "-30k-" in name else None)
        assert options["--max-epochs"] == ("1" if "-all-1ep-" in name else "3")
    assert students == 2 * 2 * 3 + 3
    assert [n for n in names if "-30k-" in n] == ["hate-kd-30k-s0", "hate-kd-30k-s1", "hate-kd-30k-s2"]
    only = suites.select_runs(runs, "hate-kd-all-1ep-s1")  # the teacher comes along, irony's does not
    assert [name for name, _ in only] == ["hate-teacher-s0", "hate-kd-all-1ep-s1"]


def test_reference_arms_longer_than_ten_minutes_run_on_the_first_seed_only(tmp_path):
    args = suites.argparse.Namespace(seeds=[0, 1, 2], epochs=None, out=str(tmp_path))
    b = [name for name, _ in suites.reference_b(args)]
    assert [n for n in b if "len512" in n or "sst2-full" in n] == ["imdb-lora-len512-s0", "imdb-full-len512-s0", "sst2-full-s0"]
    assert all(f"{arm}-s{seed}" in b for arm in ("imdb-lora-len128", "imdb-full-len256", "sst2-lora") for seed in (0, 1, 2))
    c = [name for name, _ in suites.reference_c(args)]
    assert [n for n in c if n.startswith("student-")] == ["student-odd-kd-s0", "student-even-kd-s0",
                                                          "student-odd-lora-kd-s0"]
    assert all(f"minilm-lora{arm}-s{seed}" in c for arm in ("", "-theirs") for seed in (0, 1, 2))


def test_reference_d_trains_the_odd_student_through_lora_with_the_students_kd(tmp_path):
    args = suites.argparse.Namespace(seeds=[0, 1, 2], epochs=None, out=str(tmp_path))
    runs = dict(suites.reference_d(args))
    for seed in (0, 1, 2):
        full, lora = runs[f"student-odd-kd-s{seed}"], runs[f"student-odd-lora-kd-s{seed}"]
        assert lora[lora.index("--method") + 1] == "distill-lora"
        assert lora[2:] == full[2:]  # the same teacher, layers, epochs, data and seed: only the method differs


def test_distillation_labels_tell_kd_arms_apart():
    assert distillation_label({}) == ""
    assert distillation_label({"alpha": 0.0, "temperature": 2.0}) == "CE only"
    assert distillation_label({"alpha": 0.5, "temperature": 2.0, "hidden_loss": "none"}) == "logits T=2 a=0.5"
    assert distillation_label({"alpha": 0.5, "temperature": 2.0, "hidden_loss": "cosine"}).endswith("+ hidden cosine")
    with_transfer = {"alpha": 0.5, "temperature": 2.0, "transfer": {"data": "tweet_eval/emoji", "texts": 10000}}
    assert distillation_label(with_transfer) == "logits T=2 a=0.5 + 10000 unlabelled from tweet_eval/emoji"
    ensemble = with_transfer | {"teacher_logits_cache": ["/c/a", "/c/b", "/c/c"]}
    assert distillation_label(ensemble) == "logits T=2 a=0.5 + 10000 unlabelled from tweet_eval/emoji, mean of 3 teachers"


def test_only_keeps_matching_runs_and_the_teacher_they_need(tmp_path):
    args = suites.argparse.Namespace(seeds=[0], epochs=None, out=str(tmp_path), datasets=["tweet_eval/emotion"])
    picked = [name for name, _ in suites.select_runs(suites.layer_copy(args), "*odd-kd*")]
    assert picked == [suites.teacher_run()[0], "student-odd-kd-s0"]
    assert [name for name, _ in suites.select_runs(suites.goemotions(args), "*lora*")] == ["go_emotions-lora-all-s0"]


def test_intermediate_arms_start_from_the_intermediate_runs_model_and_baselines_from_minilm(tmp_path):
    args = suites.argparse.Namespace(seeds=[0], epochs=None, out=str(tmp_path), datasets=["tweet_eval/emotion"])
    runs = dict(suites.intermediate(args))
    first = suites.intermediate(args)[0]
    assert first[0] == suites.INTERMEDIATE_RUN and first[1][first[1].index("--dataset") + 1] == "go_emotions"
    encoder = str(tmp_path / "intermediate" / suites.INTERMEDIATE_RUN / "model")
    for arm in ("goemotions-then-full-s0", "goemotions-then-lora-s0"):
        assert runs[arm][runs[arm].index("--model") + 1] == encoder
    assert "--model" not in runs["full-s0"] and "--model" not in runs["lora-s0"]  # the default, minilm-l6
    for arm in ("full", "lora"):  # each pair differs only in where the encoder comes from
        then = runs[f"goemotions-then-{arm}-s0"]
        assert [f for f in then if f not in ("--model", encoder)] == runs[f"{arm}-s0"]
    picked = [name for name, _ in suites.select_runs(suites.intermediate(args), "*then-lora*")]
    assert picked == [suites.INTERMEDIATE_RUN, "goemotions-then-lora-s0"]


def test_ratios_divide_the_student_metric_by_the_teachers_and_the_teacher_latency_by_the_students():
    teacher = {"method": "teacher", "model": "mpnet-base", "test_metric": 0.8, "latency_ms": 200.0}
    students = [{"method": "distill", "model": "runs/t-odd", "kd": "CE only", "layers": "0,2", "test_metric": 0.76,
                 "test_metric_sd": 0.01, "seeds": [0, 1], "latency_ms": 100.0},
                {"method": "full", "model": "minilm-l6", "test_metric": 0.9, "latency_ms": 1.0},
                {"method": "distill-lora", "model": "runs/t-odd", "kd": "CE only", "layers": "0,2", "test_metric": 0.72,
                 "seeds": [0], "latency_ms": 100.0}]
    lines = suites.ratios_to_teacher([teacher, *students]).splitlines()
    assert len(lines) == 4  # header, rule, the two distilled students (not the teacher, not the full run)
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "t-odd" and cells[3] == "0.7600 ± 0.0100"
    assert cells[4] == "0.950" and cells[6] == "2.00x" and cells[7] == "2"
    assert lines[3].startswith("| t-odd via LoRA | CE only | 0,2 | 0.7200 | 0.900 |")
    assert suites.ratios_to_teacher(students) == ""  # no teacher, no ratios


def test_a_given_teacher_is_used_and_not_trained_again(tmp_path, capsys):
    teacher = tmp_path / "elsewhere" / "teacher"
    teacher.mkdir(parents=True)
    (teacher / "results.json").write_text("{}")
    assert suites.main(["cross-tokenizer", "--teacher", str(teacher), "--out", str(tmp_path / "out"),
                        "--seeds", "0", "--dry-run"]) == 0
    commands = [line for line in capsys.readouterr().err.splitlines() if line.startswith("run:")]
    assert commands and not any("--method teacher" in line for line in commands)
    assert all(f"--teacher {teacher}" in line for line in commands)


def test_a_teacher_without_results_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        suites.main(["cross-tokenizer", "--teacher", str(tmp_path / "missing"), "--dry-run"])
    assert exit_info.value.code == 2



def test_a_pretrain_run_is_started_with_pretrain_py_and_resumed_with_it(tmp_path):
    run = tmp_path / "suite" / "mlm"
    fresh = suites.train_command(run, ["pretrain.py", "--max-epochs", "1"])
    assert fresh[1].endswith("pretrain.py") and "pretrain.py" not in fresh[2:] and "--max-epochs" in fresh
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert suites.train_command(run, ["pretrain.py", "--max-epochs", "1"])[1].endswith("pretrain.py")


def test_domain_adaptive_arms_start_from_the_adapted_encoders_and_train_the_teacher_only_for_kd(tmp_path, capsys):
    args = suites.argparse.Namespace(seeds=[0], epochs=None, out=str(tmp_path), teacher=None)
    runs = dict(suites.domain_adaptive(args))
    encoder = str(tmp_path / "domain-adaptive" / "mlm-tweets-e1-s0" / "model")
    assert runs["mlm-e1-lora-s0"][runs["mlm-e1-lora-s0"].index("--model") + 1] == encoder
    assert runs["mlm-e1-kd-a0.9-s0"][runs["mlm-e1-kd-a0.9-s0"].index("--student") + 1] == encoder
    assert runs["minilm-lora-s0"][runs["minilm-lora-s0"].index("--model") + 1] == "minilm-l6"
    warmed = runs["mlm-e1-hw500-lora-s0"]
    assert warmed[warmed.index("--model") + 1] == str(tmp_path / "domain-adaptive" / "mlm-tweets-e1-hw500-s0" / "model")
    assert runs["mlm-tweets-e1-hw500-s0"][runs["mlm-tweets-e1-hw500-s0"].index("--head-warmup-steps") + 1] == "500"
    assert suites.main(["domain-adaptive", "--out", str(tmp_path), "--seeds", "0", "--only", "*-lora-s0",
                        "--dry-run"]) == 0
    planned = capsys.readouterr().err
    assert "teacher-mpnet12-s0" not in planned and "mlm-tweets-e1-s0" in planned  # the encoder it needs runs
    assert suites.main(["domain-adaptive", "--out", str(tmp_path), "--seeds", "0", "--only", "mlm-e1-lora-s0",
                        "--dry-run"]) == 0
    planned = capsys.readouterr().err
    assert "mlm-tweets-e2-s0" not in planned and "hw500" not in planned  # an encoder no chosen run needs is not made
    assert suites.main(["domain-adaptive", "--out", str(tmp_path), "--seeds", "0", "--only", "mlm-e1-hw500-lora-s0",
                        "--dry-run"]) == 0
    planned = capsys.readouterr().err
    assert "mlm-tweets-e1-hw500-s0" in planned and "lr2e-5" not in planned
    low = runs["mlm-tweets-e1-hw500-lr2e-5-s0"]
    assert low[low.index("--lr") + 1] == "2e-5" and low[low.index("--head-warmup-steps") + 1] == "500"
    assert suites.main(["domain-adaptive", "--out", str(tmp_path), "--seeds", "0", "--only", "*-kd-*",
                        "--dry-run"]) == 0
    assert "teacher-mpnet12-s0" in capsys.readouterr().err


def test_the_shipped_transfer_recipe_is_the_one_the_suite_measured(tmp_path):
    """configs/teacher_emotion.yaml and configs/distill_pool_emotion.yaml (the documented command)
    differ from the transfer suite's kd-ens-all-1ep runs and their teachers in folder names only."""
    from tweetcls.training import options as train_options

    configs = Path(suites.REPO) / "configs"
    runs = dict(suites.transfer(suites.argparse.Namespace(seeds=[1], epochs=None, out=str(tmp_path))))

    def differences(flags: list[str], config: str) -> set[str]:
        measured, shipped = train_options.parse_args(flags), train_options.parse_args(["--config", str(configs / config), "--seed", "1"])
        return {key for key, value in vars(measured).items() if getattr(shipped, key) != value}

    assert differences(runs["transfer-teacher-s1"], "teacher_emotion.yaml") == {"config"}
    assert differences(runs["kd-ens-all-1ep-s1"], "distill_pool_emotion.yaml") == {"config", "teacher"}
    shipped = train_options.parse_args(["--config", str(configs / "distill_pool_emotion.yaml")])
    measured = runs["kd-ens-all-1ep-s1"][runs["kd-ens-all-1ep-s1"].index("--teacher") + 1]
    assert [Path(t).name[-2:] for t in shipped.teacher.split(",")] == [Path(t).name[-2:] for t in measured.split(",")]
