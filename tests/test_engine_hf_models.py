"""Hugging Face models that are not GPT-2 (engine/model/hf.py): each architecture, built tiny with random weights,
saved to a folder and loaded through the app's own loader, records the same Trace names as our GPT, and every
recorded value agrees with transformers' own eager forward pass on the same weights."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine import run_trace
from engine.generation.sampling import SamplingSettings, generate
from engine.inspect.embeddings import model_input, position_table
from engine.inspect.lens import contributions, logit_lens
from engine.inspect.params import param_breakdown
from engine.model.arch import differences
from engine.model.checkpoint import CheckpointError
from engine.model.hf import _CAPTURE, HFModel, load_model
from engine.model.tokenizer import start_id
from engine.model.trace import hook_names
from engine_fixtures import TINY_HF, VOCAB, save_tiny_hf

FAMILIES = sorted(TINY_HF)
TEXT = "Once upon a time, Tom the cat found a red ball."
ATOL = 1e-5


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    out = {}
    for family in FAMILIES:
        reference = save_tiny_hf(family, root / family)
        out[family] = (root / family, reference)
    return out


@pytest.fixture(scope="module")
def loaded(folders):
    return {family: load_model(folder) for family, (folder, _) in folders.items()}


def _reference(folders, family, ids):
    _, hf = folders[family]
    with torch.no_grad():
        return hf(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_loader_wraps_the_model_and_its_facts(loaded, family):
    model, tokenizer = loaded[family]
    assert isinstance(model, HFModel) and model.family == family
    cfg = model.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cfg.block_size) == (2, 4, 32, VOCAB, 32)
    if family in ("llama", "qwen2"):
        assert (cfg.n_kv_head, cfg.mlp, cfg.norm, cfg.positions, cfg.d_mlp) == (2, "gated", "rmsnorm", "rotary", 48)
        assert cfg.shares_keys_with(3) == [2, 3]
    if family == "gpt_neox":
        assert cfg.parallel_residual and cfg.rotary_dims == 2 and cfg.positions == "rotary"
    if family == "gpt_neo":
        assert cfg.local_layers == (1,) and cfg.local_window == 4 and cfg.attn_scale == 1.0
        assert cfg.positions == "learned"
    assert differences(cfg), "every one of these differs from GPT-2 somewhere, and says so"
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_trace_agrees_with_transformers(folders, loaded, family):
    model, tokenizer = loaded[family]
    trace = run_trace(model, tokenizer, TEXT)
    assert set(hook_names(2)) <= set(trace.act)
    out = _reference(folders, family, trace.ids)
    torch.testing.assert_close(trace.logits, out.logits[0], atol=ATOL, rtol=0)
    for layer in range(2):
        torch.testing.assert_close(trace.act[f"blocks.{layer}.attn.hook_pattern"], out.attentions[layer][0],
                                   atol=ATOL, rtol=0)
        torch.testing.assert_close(trace.act[f"blocks.{layer}.hook_resid_pre"], out.hidden_states[layer][0],
                                   atol=ATOL, rtol=0)
    # The last hidden state transformers returns is after the final norm.
    torch.testing.assert_close(trace.act["ln_final.hook_normalized"], out.hidden_states[-1][0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_recorded_steps_fit_together(loaded, family):
    """Each recorded value is what the next step computes from: scores -> pattern -> z, MLP pre -> post, and the
    residual stream adds up (for a parallel-residual model too)."""
    model, tokenizer = loaded[family]
    trace = run_trace(model, tokenizer, TEXT)
    cfg, n = model.config, len(trace)
    for layer in range(cfg.n_layer):
        a = f"blocks.{layer}.attn."
        scores, pattern = trace.act[a + "hook_attn_scores"], trace.act[a + "hook_pattern"]
        assert scores.shape == pattern.shape == (cfg.n_head, n, n)
        future = torch.ones(n, n, dtype=torch.bool).triu(1)
        assert torch.isneginf(scores[:, future]).all(), "the future is masked to -inf"
        torch.testing.assert_close(scores.softmax(-1), pattern, atol=ATOL, rtol=0)
        q, k = trace.act[a + "hook_q"], trace.act[a + "hook_k"]  # [pos, head, d_head]
        dots = torch.einsum("qhd,khd->hqk", q, k) * cfg.scale
        allowed = torch.isfinite(scores)
        torch.testing.assert_close(dots[allowed], scores[allowed], atol=1e-4, rtol=0)
        if layer in cfg.local_layers:
            assert not allowed[:, -1, :n - cfg.local_window].any(), "a local layer sees only its window"
        z = torch.einsum("hqk,khd->qhd", pattern, trace.act[a + "hook_v"])
        torch.testing.assert_close(z, trace.act[a + "hook_z"], atol=ATOL, rtol=0)
        if cfg.n_kv_head < cfg.n_head:  # grouped heads read the same keys
            torch.testing.assert_close(k[:, 0], k[:, 1])
        m = f"blocks.{layer}.mlp."
        act = F.silu if cfg.activation == "silu" else (lambda x: F.gelu(x, approximate="tanh")) \
            if cfg.activation == "gelu_new" else F.gelu
        expected = act(trace.act[m + "hook_pre"])
        if cfg.mlp == "gated":
            expected = expected * trace.act[m + "hook_pre_linear"]
        torch.testing.assert_close(expected, trace.act[m + "hook_post"], atol=ATOL, rtol=0)
        b = f"blocks.{layer}."
        torch.testing.assert_close(trace.act[b + "hook_resid_pre"] + trace.act[b + "hook_attn_out"]
                                   + trace.act[b + "hook_mlp_out"], trace.act[b + "hook_resid_post"],
                                   atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_trace_costs_what_config_cost_says(loaded, family):
    from engine.model.cost import config_cost
    model, tokenizer = loaded[family]
    trace = run_trace(model, tokenizer, TEXT)
    assert config_cost(model.config, n_pos=len(trace)).bytes == trace.nbytes


@pytest.mark.parametrize("family", FAMILIES)
def test_logit_lens_and_contributions_end_at_the_output(loaded, family):
    model, tokenizer = loaded[family]
    trace = run_trace(model, tokenizer, TEXT)
    lens = logit_lens(model, trace)
    assert torch.equal(lens.top_ids[-1, :, 0], trace.logits.argmax(-1))
    parts = contributions(model, trace)  # exact for LayerNorm and RMSNorm alike
    torch.testing.assert_close(parts.direct.sum(0) + parts.bias, parts.target_logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_embeddings_and_parameters(loaded, family):
    model, tokenizer = loaded[family]
    trace = run_trace(model, tokenizer, TEXT)
    mi = model_input(model, tokenizer, TEXT)
    assert mi.encoding.ids == trace.ids
    if model.config.positions == "learned":
        torch.testing.assert_close(mi.total, trace.act["blocks.0.hook_resid_pre"], atol=ATOL, rtol=0)
        assert position_table(model) is not None
    else:
        assert position_table(model) is None and not mi.position.any()
        torch.testing.assert_close(mi.token, trace.act["blocks.0.hook_resid_pre"], atol=ATOL, rtol=0)
    groups = param_breakdown(model)
    assert sum(g.count for g in groups) == model.num_params()
    assert not [g.name for g in groups if g.part == "Other"]


@pytest.mark.parametrize("family", FAMILIES)
def test_decode_step_continues_like_a_full_forward(loaded, family):
    model, tokenizer = loaded[family]
    ids = torch.tensor([run_trace(model, tokenizer, TEXT).ids])
    full, _ = model(ids)
    logits, past = model.decode_step(ids[:, :5])
    steps = [logits]
    for i in range(5, ids.shape[1]):
        logits, past = model.decode_step(ids[:, i:i + 1], past)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-4, rtol=0)
    new = generate(model, ids[0].tolist()[:8], 5, SamplingSettings(temperature=0.0))
    assert len(new) == 5 and all(0 <= t < VOCAB for t in new)


def test_two_sessions_tracing_at_once_get_their_own_activations(loaded):
    """The hooks live on the shared model; what they record goes to the trace of the thread that runs it."""
    model, tokenizer = loaded["llama"]
    texts = ["The dog ran to the park.", "A bird sang in the tall green tree all day long."]
    alone = [run_trace(model, tokenizer, t) for t in texts]
    results, errors = {}, []

    def work(i):
        try:
            for _ in range(20):
                results[i] = run_trace(model, tokenizer, texts[i])
                assert len(results[i]) == len(alone[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(2):
        for name, value in alone[i].act.items():
            torch.testing.assert_close(results[i].act[name], value, atol=0, rtol=0)
    assert _CAPTURE.get() is None


def test_a_plain_forward_records_nothing(loaded):
    model, _ = loaded["qwen2"]
    assert _CAPTURE.get() is None
    logits, _ = model(torch.tensor([[1, 2, 3]]))
    assert logits.shape == (1, 3, VOCAB)


def test_start_token(loaded):
    _, tokenizer = loaded["llama"]
    assert start_id(tokenizer) == 0  # <|endoftext|>


def _config(folder, **changes):
    path = folder / "config.json"
    data = json.loads(path.read_text()) | changes
    path.write_text(json.dumps(data))


@pytest.fixture
def copy_of(folders, tmp_path):
    import shutil

    def make(family):
        dst = tmp_path / family
        shutil.copytree(folders[family][0], dst)
        return dst
    return make


def test_refuses_a_folder_with_only_pickled_weights(copy_of):
    folder = copy_of("llama")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="no safetensors.*pytorch_model.bin"):
        load_model(folder)


def test_refuses_custom_code(copy_of):
    folder = copy_of("qwen2")
    _config(folder, auto_map={"AutoModelForCausalLM": "modeling_evil.Evil"})
    with pytest.raises(CheckpointError, match="own Python code"):
        load_model(folder)


def test_refuses_an_unsupported_architecture_naming_it(copy_of):
    folder = copy_of("gpt_neox")
    _config(folder, architectures=["MambaForCausalLM"])
    with pytest.raises(CheckpointError, match="MambaForCausalLM is not supported.*LlamaForCausalLM"):
        load_model(folder)


def _pair_only(folder):
    """The folder's tokenizer as GPT-2's older repos ship it: vocab.json and merges.txt, no tokenizer.json."""
    from engine.model.tokenizer import load_tokenizer
    load_tokenizer(folder).backend_tokenizer.model.save(str(folder))
    (folder / "tokenizer.json").unlink()
    return folder


TEXT = "Once upon a time, ünïcode 🦊 and   spaces\nnew line.<|endoftext|>"


@pytest.mark.parametrize("family", ["gpt_neo"])  # GPT-2 folders: test_engine_checkpoint
def test_loads_gpt2s_vocab_and_merges_without_tokenizer_json(copy_of, family):
    import shutil
    full = copy_of(family)
    _, want = load_model(full)
    pair = _pair_only(Path(shutil.copytree(full, full.parent / f"{family}-pair")))
    _, tok = load_model(pair)
    assert tok(TEXT).input_ids == want(TEXT).input_ids and len(tok) == len(want)
    assert tok.decode(tok(TEXT).input_ids) == TEXT and start_id(tok) == start_id(want)


def test_refuses_the_pair_where_it_would_split_text_wrongly(copy_of):
    # Qwen2 ships vocab.json and merges.txt too, but splits text with its own expression: only tokenizer.json
    # says how, so the pair alone is not GPT-2's tokenizer there.
    folder = _pair_only(copy_of("llama"))
    with pytest.raises(CheckpointError, match="tokenizer.json is missing$"):
        load_model(folder)


def test_refuses_a_missing_tokenizer_and_broken_json(copy_of):
    folder = copy_of("gpt_neo")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json is missing"):
        load_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(folder)


def test_truncated_weights_are_one_plain_line(copy_of):
    folder = copy_of("llama")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="could not load") as e:
        load_model(folder)
    assert "\n" not in str(e.value)


def _split_by(folder, pattern: str) -> None:
    """Make the folder's tokenizer split text with `pattern` first, as Llama 3's and Qwen2's tokenizer.json do."""
    data = json.loads((folder / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    (folder / "tokenizer.json").write_text(json.dumps(data))


# Overlapping alternatives under a repeat: each passed the old structural check (no group repeated inside a
# repeated group), and the tokenizers library panics after 0.1-0.7 s on 24 or more characters.
HOSTILE = ["(a+)+$", "(a|aa)+$", "(a|a)*$", "(?:a|a)+b", "((a)|a)+$"]


@pytest.mark.parametrize("pattern", HOSTILE)
def test_refuses_a_tokenizer_that_could_backtrack_for_minutes(copy_of, pattern):
    folder = copy_of("llama")
    _split_by(folder, pattern)
    with pytest.raises(CheckpointError, match="not one Glassbox knows to be safe") as e:
        load_model(folder)
    assert "\n" not in str(e.value) and "can take minutes on a short text" in str(e.value)


def _real_patterns() -> dict[str, str]:
    """The splitting expressions of real tokenizers, from transformers' own sources where it keeps them."""
    import inspect

    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as QWEN2
    llama3 = inspect.signature(TikTokenConverter.__init__).parameters["pattern"].default  # cl100k, Llama 3's
    gpt2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""  # tokenizers' ByteLevel
    return {"gpt2": gpt2, "llama3": llama3, "qwen2": QWEN2}


@pytest.mark.parametrize("name", ["gpt2", "llama3", "qwen2"])
def test_the_splitting_patterns_of_real_tokenizers_pass(copy_of, name):
    from engine.model.tokenizer import SAFE_PATTERNS, check_tokenizer_patterns
    pattern = _real_patterns()[name]
    assert pattern in SAFE_PATTERNS
    check_tokenizer_patterns(json.dumps({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": pattern}}}).encode())
    for hostile in HOSTILE:  # and a near miss of a safe one is not safe
        with pytest.raises(ValueError, match="not one Glassbox knows to be safe"):
            check_tokenizer_patterns(json.dumps({"pattern": {"Regex": hostile}}).encode())
    with pytest.raises(ValueError, match="not one Glassbox knows to be safe"):
        check_tokenizer_patterns(json.dumps({"pattern": {"Regex": pattern + "|(a|aa)+$"}}).encode())
    folder = copy_of("llama")
    _split_by(folder, pattern)
    _, tokenizer = load_model(folder)
    text = "Tom's 1234 cats don't      sleep!!\n\nThe end." + "a" * 40 + "!"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_the_gpt2_pattern_is_the_one_byte_level_tokenizers_build_in():
    """Splitting with SAFE_PATTERNS' GPT-2 expression gives the pieces of the tokenizers library's own
    ByteLevel expression (the one GPT-2's, GPT-NeoX's and SmolLM2's tokenizer.json files leave implicit)."""
    from tokenizers import Regex, pre_tokenizers

    from engine.model.tokenizer import SAFE_PATTERNS
    gpt2 = next(p for p, name in SAFE_PATTERNS.items() if name == "GPT-2")
    built_in = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    written = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(gpt2), "isolated"),
                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    text = "Tom's dog  didn't bark, 12345 times!\n\n\tÉcole   naïve  日本語 ok?? "
    assert written.pre_tokenize_str(text) == built_in.pre_tokenize_str(text)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_generation_with_left_padding_matches_each_prompt_alone(loaded, family):
    """The key/value-cache contract on transformers' own cache: left-padded rows (key_mask, position ids)
    draw what each prompt draws alone."""
    from engine.generation.decode import generate_batch
    model, tokenizer = loaded[family]
    prompts = [[0] + tokenizer.encode("Once upon a time"), [0] + tokenizer.encode("The dog")]
    greedy = SamplingSettings(temperature=0.0)
    together = generate_batch(model, prompts, 6, greedy)
    alone = [generate_batch(model, [p], 6, greedy)[0] for p in prompts]
    assert together == alone
