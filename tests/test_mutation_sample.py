"""The sampled mutation score (benchmarks/mutation_sample.py): the sample, the interval, the count."""

from benchmarks.mutation_sample import sample, score, to_run, wilson


def test_the_wilson_interval_matches_the_textbook_values():
    low, high = wilson(38, 40)  # Wilson (1927) 95% interval of 38/40: 0.835 to 0.986
    assert round(low, 3) == 0.835 and round(high, 3) == 0.986
    assert wilson(40, 40)[1] == 1.0 and round(wilson(40, 40)[0], 3) == 0.912  # all killed is not "certainly 100%"


def test_the_sample_is_seeded_per_package_and_never_mixes_packages():
    names = [f"{p}.m.f__mutmut_{i}" for p in ("distill", "compress") for i in range(50)] + ["distill_extra.x__mutmut_1"]
    first = sample(names, ("distill", "compress"), 10, seed=0)
    assert first == sample(names, ("distill", "compress"), 10, seed=0)
    assert first["distill"] != sample(names, ("distill", "compress"), 10, seed=1)["distill"]
    assert all(n.startswith("distill.") for n in first["distill"]) and len(set(first["distill"])) == 10
    assert sample(names, ("compress",), 80, seed=0)["compress"] == sorted(n for n in names if n.startswith("compress."))


def test_the_score_counts_no_tests_as_survived_and_leaves_out_only_equivalent_survivors():
    chosen = {"distill": ["d.a", "d.b", "d.c", "d.d", "d.e"]}
    results = {"d.a": 1, "d.b": 0, "d.c": 33, "d.d": None, "d.e": 1}  # killed, survived, no tests, unchecked, killed
    row = score(chosen, results, equivalent={"d.b": "default argument", "d.e": "claimed, but it was killed"})["distill"]
    assert row["equivalent"] == ["d.b"]
    assert row["checked"] == 3 and row["killed"] == 2 and row["survived"] == ["d.c"]
    assert row["score"] == 2 / 3


def test_recheck_reruns_only_the_sampled_survivors_not_judged_equivalent():
    chosen = {"distill": ["d.a", "d.b", "d.c", "d.d", "d.e"]}
    results = {"d.a": 1, "d.b": 0, "d.c": 33, "d.d": None, "d.e": 0, "d.unsampled": 0}
    assert to_run(chosen, results, equivalent={"d.e": "default argument"}) == ["d.d"]
    assert to_run(chosen, results, equivalent={"d.e": "default argument"}, recheck=True) == ["d.b", "d.c", "d.d"]
