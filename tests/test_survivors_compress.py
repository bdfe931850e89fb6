"""compress/, where hand-made mutants survived (issue 50): the static int8 graph checked node by
node against compress/onnx_static.py's design, a failed calibration that must leave nothing
behind, a seeded calibration sample, and pruning checked against what it must remove."""

from __future__ import annotations

import copy

import onnx
import pytest
import torch
from torch import nn

from tweetcls.compress.onnx_files import STATIC_FILE

# The design (compress/onnx_static.py's docstring), written out here rather than imported:
# quantized are the query/key/value and FFN input projections; everything else stays fp32
QUANTIZED_BY_DESIGN = ("/attention/self/query/", "/attention/self/key/", "/attention/self/value/",
                       "/intermediate/dense/")


@pytest.fixture(scope="module")
def classifier(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3).eval()


@pytest.fixture(scope="module")
def exported(classifier, tiny_model_dir, tmp_path_factory):
    from tweetcls.compress.onnx_export import export_onnx
    from tweetcls.core.build import load_tokenizer

    folder = tmp_path_factory.mktemp("onnx")
    tokenizer = load_tokenizer(tiny_model_dir)
    export_onnx(classifier, tokenizer, folder, {"label_names": ["a", "b", "c"], "multi_label": False,
                                               "threshold": None, "temperature": 1.0, "pooling": "cls",
                                               "max_length": 32})
    return folder, tokenizer


TEXTS = [f"the {a} and the {b} were so very {c}" for a in ("river", "table", "party") for b in ("cloud", "win")
         for c in ("great", "awful", "quiet")]


def _dequantized_inputs(graph) -> dict[str, bool]:
    """MatMul/Gemm node name -> whether every input comes through a DequantizeLinear (a QDQ int8 op)."""
    producer = {out: node for node in graph.node for out in node.output}
    return {node.name: all(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear"
                           for i in node.input if i)
            for node in graph.node if node.op_type in ("MatMul", "Gemm")}


def test_the_static_graph_quantizes_exactly_the_projections_the_design_names(exported):
    from tweetcls.compress.onnx_static import quantize_onnx_static

    folder, tokenizer = exported
    path = quantize_onnx_static(folder, TEXTS, tokenizer)
    fp32_nodes = [n.name for n in onnx.load(str(folder / "model.onnx")).graph.node if n.op_type in ("MatMul", "Gemm")]
    quantized = _dequantized_inputs(onnx.load(str(path)).graph)
    assert set(fp32_nodes) <= set(quantized)
    expected = {name: any(part in name for part in QUANTIZED_BY_DESIGN) for name in fp32_nodes}
    assert sum(expected.values()) == 2 * 4  # 2 layers x (query, key, value, FFN input)
    assert {name: quantized[name] for name in fp32_nodes} == expected


def test_a_calibration_that_fails_midway_leaves_no_file_behind(exported, monkeypatch):
    import onnxruntime.quantization as quantization

    from tweetcls.compress.onnx_static import quantize_onnx_static

    folder, tokenizer = exported
    (folder / STATIC_FILE).unlink(missing_ok=True)
    before = sorted(p.name for p in folder.iterdir())

    def half_written(model_input, model_output, *args, **kwargs):
        with open(model_output, "wb") as f:
            f.write(b"\x08\x07half a model")
        raise MemoryError("killed while calibrating")

    monkeypatch.setattr(quantization, "quantize_static", half_written)
    with pytest.raises(MemoryError):
        quantize_onnx_static(folder, TEXTS, tokenizer)
    assert sorted(p.name for p in folder.iterdir()) == before


def test_the_calibration_sample_is_seeded_and_the_seed_matters():
    from tweetcls.compress.onnx_static import calibration_sample

    texts = [f"text number {i}" for i in range(1000)]
    assert calibration_sample(texts) == calibration_sample(list(texts))
    assert len(calibration_sample(texts)) == 256 and len(set(calibration_sample(texts))) == 256
    assert calibration_sample(texts, seed=1) != calibration_sample(texts, seed=2)
    assert calibration_sample(["  ", "a", "b"], n=5) in (["a", "b"], ["b", "a"])


def _linears(model: nn.Module) -> dict[str, nn.Linear]:
    from tweetcls.compress.unstructured import prunable_linears

    return prunable_linears(model)


def test_global_pruning_uses_one_threshold_and_the_report_weights_layers_by_size(classifier):
    from tweetcls.compress.unstructured import magnitude_prune, make_permanent, sparsity_report

    model = copy.deepcopy(classifier)
    with torch.no_grad():  # layers of very different magnitudes: one threshold prunes them unequally
        for i, layer in enumerate(_linears(model).values()):
            layer.weight.mul_(10.0 ** (i % 3))
    weights = torch.cat([m.weight.detach().abs().flatten() for m in _linears(model).values()])
    threshold = weights.kthvalue(int(0.5 * len(weights))).values
    magnitude_prune(model, 0.5, scope="global")
    make_permanent(model)
    for name, layer in _linears(model).items():
        original = dict(_linears(classifier))[name].weight
        assert torch.equal(layer.weight == 0, (original.abs() * (10.0 ** (list(_linears(model)).index(name) % 3))
                                               <= threshold)), name
    report = sparsity_report(model)
    sizes = {n: m.weight.numel() for n, m in _linears(model).items()}
    weighted = sum(report["per_layer"][n] * sizes[n] for n in sizes) / sum(sizes.values())
    assert report["overall"] == pytest.approx(weighted) == pytest.approx(0.5, abs=0.01)
    assert len(set(round(v, 2) for v in report["per_layer"].values())) > 1  # layers pruned unequally
    assert "classifier" not in _linears(model) and not (model.classifier.weight == 0).any()


def test_pruning_one_hundred_percent_is_refused():
    from tweetcls.compress.unstructured import check_amount
    from tweetcls.core.errors import UsageError

    check_amount(0.0)
    check_amount(0.99)
    with pytest.raises(UsageError):
        check_amount(1.0)


def test_structured_pruning_keeps_the_most_important_neurons_and_shrinks_the_config(classifier, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from tweetcls.compress.structured import ffn_pairs, neuron_importance, prune_ffn_neurons

    model = copy.deepcopy(classifier)
    importance = [neuron_importance(a, b).detach() for a, b in ffn_pairs(model)]
    kept = prune_ffn_neurons(model, 0.25)
    assert model.config.intermediate_size == 36  # 48 neurons, a quarter removed
    for block, scores in zip(kept, importance):
        assert set(kept[block].tolist()) == set(scores.topk(36).indices.tolist())
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[2, 10, 20, 30, 3]])
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, model.eval()(input_ids=ids).logits, atol=1e-5)


def test_the_ledger_counts_the_zeros_of_a_pruned_variant_and_prunes_globally(classifier):
    from tweetcls.compress.ledger import build_variant, parse_variants
    from tweetcls.compress.weight_counts import parameter_counts

    layer, global_ = (build_variant(classifier, steps) for steps in parse_variants("prune:0.5,prune-global:0.5"))
    zeros = {name: c["params_total"] - c["params_nonzero"]
             for name, c in (("before", parameter_counts(classifier)), ("after", parameter_counts(layer)))}
    pruned = sum(m.weight.numel() for m in _linears(classifier).values()) // 2
    assert zeros["after"] - zeros["before"] == pytest.approx(pruned, abs=20)
    per_layer = {n: float((m.weight == 0).float().mean()) for n, m in _linears(global_).items()}
    assert max(per_layer.values()) - min(per_layer.values()) > 0.02  # one global threshold, not 50% each


def test_a_reloaded_int8_model_is_bit_identical_and_its_embeddings_are_int8(classifier, tmp_path):
    from tweetcls.compress.dynamic_int8 import load_int8, quantize_int8, quantized_modules, save_int8

    model = quantize_int8(classifier)
    assert any(isinstance(m, nn.Module) and "Embedding" in type(m).__name__ for m in quantized_modules(model).values())
    save_int8(model, tmp_path)
    reloaded = load_int8(tmp_path)
    ids = torch.tensor([[2, 10, 20, 30, 3], [2, 11, 12, 3, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids, attention_mask=mask).logits,
                           model(input_ids=ids, attention_mask=mask).logits)


def _layers_strategy():
    from hypothesis import strategies as st

    return st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12), st.floats(0.01, 100.0)), min_size=1, max_size=5)


def test_sparsity_is_weighted_by_layer_size_and_global_pruning_cuts_at_one_magnitude():
    """Property: any stack of layers of any sizes and scales, any amount."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tweetcls.compress.unstructured import magnitude_prune, make_permanent, sparsity_report

    @settings(max_examples=40, deadline=None, derandomize=True, database=None)
    @given(shapes=_layers_strategy(), amount=st.floats(0.0, 0.95), seed=st.integers(0, 1000))
    def check(shapes, amount, seed):
        torch.manual_seed(seed)
        model = nn.Sequential(*[nn.Linear(i, o) for i, o, _ in shapes])
        with torch.no_grad():
            for layer, (_, _, scale) in zip(model, shapes):
                layer.weight.mul_(scale)
        before = torch.cat([m.weight.detach().abs().flatten() for m in model])
        magnitude_prune(model, amount, scope="global")
        make_permanent(model)
        after = torch.cat([m.weight.detach().flatten() for m in model])
        pruned = after == 0
        assert int(pruned.sum()) == round(amount * len(after))
        if pruned.any() and (~pruned).any():
            assert before[pruned].max() <= before[~pruned].min()  # one threshold over all layers
        report = sparsity_report(model)
        assert report["overall"] == pytest.approx(float(pruned.float().mean()))

    check()
