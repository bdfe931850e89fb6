"""experiments/pooling_probe.py: where its results go."""

from __future__ import annotations



from experiments.pooling_probe import result_name


def test_a_probe_of_another_encoder_gets_its_own_result_file():
    assert result_name("tweet_eval/emotion", "minilm-l6") == "pooling_probe"
    assert result_name("go_emotions", "minilm-l6") == "pooling_probe-go_emotions"
    assert result_name("tweet_eval/emotion", "runs/suites/intermediate/warm-s0/model/") == "pooling_probe-warm-s0"
    assert result_name("tweet_eval/emotion", "mpnet-base") == "pooling_probe-mpnet-base"
